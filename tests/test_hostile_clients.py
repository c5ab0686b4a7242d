"""What a hostile client sends below the protocol creates no state: reserved Socket.IO names, other
namespaces, stray acks and undecodable frames are refused and counted, never dispatched."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgpack
import pytest

from chatserver.gateway.socket_server import RESERVED_EVENTS
from tests.conftest import Client, RunningServer, ServerFactory
from tests.members import TestMember

SIO_CONNECT = msgpack.packb({"type": 0, "nsp": "/", "data": {}})


async def listed_room(server: RunningServer) -> str:
    host = await server.client()
    ack = await host.call("room.create", {"listed": True, "topic": "hostile"})
    assert ack["ok"], ack
    return str(ack["room"]["room_id"])


def sid_of(server: RunningServer, client: Client) -> str:
    sid = client.sio.get_sid("/")
    assert sid in server.node.registry.connections
    return str(sid)


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
async def test_a_reserved_name_as_an_event_changes_nothing(
    make_server: ServerFactory, name: str
) -> None:
    """The attack: one connection joins to its join burst, then sends `connect` (or another reserved
    name) as an event, which used to build a fresh connection record (full buckets, no count of
    rooms) and orphan the earlier seats. Now: refused on the ack, the same record, the same
    buckets, no new seat, and the earlier seats still held by this connection."""
    server = await make_server(join_burst=1, join_rate_per_s=0.001, rooms_per_connection=8)
    room_id, other_room = await listed_room(server), await listed_room(server)
    member = await TestMember.join(server, room_id)
    sid = sid_of(server, member.client)
    record = server.node.registry.connections[sid]
    tokens = record.join_bucket.tokens
    members_before = len((await server.node.store.load(room_id)).room.members)  # type: ignore[union-attr]

    for payload in ({}, None, {"room_id": room_id}):
        ack = await member.client.sio.call(name, payload, timeout=5)
        assert ack == {"ok": False, "error": {"code": "unknown_event", "message": "Unknown event."}}

    assert server.node.registry.connections[sid] is record
    assert len(server.node.registry.connections) == 3  # two hosts and this member, nobody else
    assert record.join_bucket.tokens <= tokens + 0.01  # not refilled
    assert member.room_id in record.seats
    second = TestMember(member.client, other_room)
    refused = await second.join_ack()
    assert refused["ok"] is False and refused["error"]["code"] == "rate_limited"
    for rid, count in ((room_id, members_before), (other_room, 0)):
        room = await server.node.store.load(rid)
        assert room is not None and len(room.room.members) == count
    assert server.node.sio.refusals.counts["reserved_event"] == 3


async def test_other_namespaces_and_stray_acks_are_refused_and_counted(
    make_server: ServerFactory,
) -> None:
    server = await make_server()
    url = server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    big = "/" + "n" * 60_000
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        assert (await ws.receive(timeout=5)).data.startswith("0{")
        await ws.send_bytes(SIO_CONNECT)
        await ws.receive(timeout=5)  # the CONNECT answer
        before = len(server.node.registry.connections)
        await ws.send_bytes(msgpack.packb({"type": 0, "nsp": big, "data": {}}))
        await ws.send_bytes(
            msgpack.packb({"type": 2, "nsp": big, "data": ["room.list", {}], "id": 1})
        )
        await ws.send_bytes(msgpack.packb({"type": 3, "nsp": "/", "data": [{}], "id": 0}))
        await ws.send_bytes(msgpack.packb({"type": 3, "nsp": "/", "data": [{}], "id": 99}))
        await ws.send_bytes(msgpack.packb({"type": 2, "nsp": "/", "data": [7, {}], "id": 2}))
        answers = [await ws.receive(timeout=5) for _ in range(2)]
        assert len(server.node.registry.connections) == before
    acks = [msgpack.unpackb(a.data) for a in answers]
    # The stray namespace's connect is refused; the nameless event gets the catalogued error.
    assert acks[0]["type"] == 4
    assert acks[1]["type"] == 3 and acks[1]["data"][0]["error"]["code"] == "unknown_event"
    counts = server.node.sio.refusals.counts
    assert counts["namespace"] == 2 and counts["stray_ack"] == 2 and counts["bad_event"] == 1


async def test_metrics_count_refused_input_by_reason(make_server: ServerFactory) -> None:
    server = await make_server()
    url = server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            await ws.receive(timeout=5)
            await ws.send_bytes(SIO_CONNECT)
            await ws.receive(timeout=5)
            for _ in range(25):
                await ws.send_bytes(b"\xc1\xc1\xc1")  # a binary message frame of invalid msgpack
            await ws.send_bytes(
                msgpack.packb({"type": 2, "nsp": "/", "data": ["room.list", {}], "id": 5})
            )
            reply: Any = msgpack.unpackb((await ws.receive(timeout=5)).data)
            assert reply["type"] == 3  # still served after the garbage
        async with http.get(server.url + "/metrics") as resp:
            text = await resp.text()
    assert 'chatserver_refused_input_total{reason="bad_frame"} 25.0' in text
