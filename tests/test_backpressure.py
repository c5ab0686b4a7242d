"""A consumer that stops reading is disconnected with a reconnect code; the others keep receiving."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import socketio

from chatserver.protocol import CloseCode
from tests.conftest import Client, ServerFactory
from tests.members import TestMember
from tests.test_gateway import create_listed


def small_receive_buffer(addr_info: Any) -> socket.socket:
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=kind, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


async def test_slow_consumer_is_disconnected_while_others_keep_receiving(
    make_server: ServerFactory,
) -> None:
    server = await make_server(
        send_queue_max=32, msg_rate_per_s=10_000, msg_burst=10_000, resume_grace_s=0.2
    )
    room_id = await create_listed(server)
    sender = await TestMember.join(server, room_id)
    steady = await TestMember.join(server, room_id)

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(socket_factory=small_receive_buffer)
    )
    stalled = TestMember(Client(), room_id)
    stalled.client.sio = socketio.AsyncClient(
        serializer="msgpack", reconnection=False, http_session=session
    )
    closes: list[int] = []
    await stalled.client.connect(server.url)
    assert (await stalled.join_ack())["ok"]
    ws = stalled.client.sio.eio.ws
    stalled.client.sio.eio.read_loop_task.cancel()  # stop reading: the socket backs up

    sent = 0
    eio = server.node.sio.eio
    while eio.slow_consumers == 0 and sent < 20_000:
        ack = await sender.send(f"message {sent} " + "x" * 3000)
        assert ack["ok"], ack
        sent += 1
    assert eio.slow_consumers == 1, f"no disconnect after {sent} messages"
    print(f"slow consumer cut off after {sent} messages")

    # The steady member got every message, in order.
    seqs = []
    while len(seqs) < sent:
        _, data = await steady.client.next("msg")
        seqs.append(data["seq"])
    assert seqs == sorted(seqs) and len(set(seqs)) == sent

    # The server dropped the stalled connection and, after the resume grace, released its seat.
    _, left = await steady.client.next("member.left", timeout=10)
    assert left["member_id"] == stalled.member_id and left["reason"] == "disconnected"
    while not ws.closed:
        message = await ws.receive(timeout=5)
        if message.type == aiohttp.WSMsgType.CLOSE:
            closes.append(message.data)
    # The close frame is written behind the backlog; a reader that catches up sees the code.
    assert closes in ([], [CloseCode.SLOW_CONSUMER])
    sender.crypto.remove_member(stalled.identity.member_id)
    sender.crypto.set_epoch(left["epoch"])
    assert (await sender.send("still fine"))["ok"]
    await session.close()
    await asyncio.sleep(0)
