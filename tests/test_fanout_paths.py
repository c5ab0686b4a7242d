"""Room broadcasts on both send paths: the fast path (encoded once, written at once on a quiet loop,
coalesced per connection on a busy one) and python-socketio's and engine.io's stock path
(`transport_fast_path=False`, what the perf guard must tell apart). Every member gets every
message once, in sequence order, whatever the path and however the writes were batched."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from socketio import packet as sio_packet

from tests.conftest import RunningServer, ServerFactory
from tests.members import TestMember


async def _room(server: RunningServer, size: int) -> list[TestMember]:
    host = await server.client()
    created = await host.call("room.create", {"listed": True, "topic": "paths"})
    assert created["ok"], created
    room_id = created["room"]["room_id"]
    members = [await TestMember.join(server, room_id) for _ in range(size)]
    for member in members:
        for other in members:
            if other is not member:
                member.crypto.add_member(other.crypto.card)
    return members


async def _pushed_seqs(member: TestMember, count: int) -> list[int]:
    seqs = []
    while len(seqs) < count:
        _, data = await member.client.next("msg", timeout=10)
        seqs.append(data["seq"])
    return seqs


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "stock"])
async def test_every_member_gets_every_message_once_in_order(
    make_server: ServerFactory, fast: bool
) -> None:
    server = await make_server(transport_fast_path=fast, msg_rate_per_s=1000, msg_burst=1000)
    members = await _room(server, 6)
    # One at a time (a quiet loop: each broadcast written at once), then every member at once (a
    # busy loop: broadcasts coalesce per connection, behind acks already queued).
    acks: list[Any] = [await members[0].send(f"one {i}") for i in range(5)]

    async def talk(member: TestMember) -> list[Any]:
        return [await member.send(f"many {i}") for i in range(8)]

    for sent in await asyncio.gather(*(talk(m) for m in members)):
        acks += sent
    assert [a for a in acks if not a["ok"]] == []
    expected = sorted(a["seq"] for a in acks)
    assert len(set(expected)) == 5 + 6 * 8
    for member in members:
        assert await _pushed_seqs(member, len(expected)) == expected
        await asyncio.sleep(0.05)
        assert [e for e, _ in member.client.drain() if e == "msg"] == []  # nothing twice
    stats = server.node.sio.eio.stats
    assert (stats.broadcasts > 0) is fast  # the stock path never reaches FanoutManager


async def test_a_broadcast_written_at_once_never_overtakes_a_queued_frame(
    make_server: ServerFactory,
) -> None:
    # On a quiet loop a broadcast goes straight to each connection, except one with frames already
    # queued in this iteration: those go first.
    server = await make_server()
    [member] = await _room(server, 1)
    sio = server.node.sio
    sid = member.client.sio.get_sid("/")
    await asyncio.sleep(0.1)
    member.client.drain()  # its own join's pushes
    for _ in range(5):
        await asyncio.sleep(0.05)  # a quiet loop: the last flush saw at most one broadcast
        # A packet on the per-connection path (as an ack goes), queued for this iteration's flush.
        packet = sio.packet_class(sio_packet.EVENT, namespace="/", data=["first", {"n": 1}])
        await sio._send_packet(sio.manager.eio_sid_from_sid(sid, "/"), packet)
        await sio.emit("second", {"n": 2}, room=member.room_id)  # a broadcast in the same one
        assert (await member.client.next())[0] == "first"
        assert (await member.client.next())[0] == "second"
