"""Hostile clients against real `chatserver serve` processes: what they can make the node write to its
log, how long a connection that never finishes saying hello may stay, and what Redis keeps once
every node is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import aiohttp
import msgpack
import pytest

from chatserver.client import ChatClient
from tests.cluster.conftest import ChatNodesFactory
from tests.cluster.harness import HOST, RedisServer
from tests.cluster.scaleout_helpers import close_all, join_member, metric, wait_until

MARK = "ATTACKERTEXT"
SIO_CONNECT = msgpack.packb({"type": 0, "nsp": "/", "data": {}})


def malformed_frames(n: int) -> list[bytes]:
    """`n` frames, each refused exactly once, most of them carrying the attacker's text."""
    big_namespace = "/" + MARK * 5000  # 60 KB
    kinds = [
        b"\xc1" + MARK.encode(),  # not msgpack
        msgpack.packb({"type": 9, "nsp": "/", "data": [MARK]}),  # no such packet type
        msgpack.packb({"type": 2, "nsp": big_namespace, "data": ["room.list", {}]}),
        msgpack.packb({"type": 2, "nsp": "/", "data": ["connect", {"x": MARK}]}),
        msgpack.packb({"type": 3, "nsp": "/", "data": [MARK], "id": 424242}),
        msgpack.packb({"type": 5, "nsp": "/", "data": [MARK], "id": 1}),  # a binary event, unasked
    ]
    return [kinds[i % len(kinds)] for i in range(n)]


async def test_five_thousand_malformed_frames_leave_a_few_log_lines_and_a_count(
    chat_nodes: ChatNodesFactory,
) -> None:
    (node,) = await chat_nodes(1, msg_rate_per_s=1000, msg_burst=1000)
    before = node.logs().count("\n")
    url = node.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
        await ws.receive(timeout=5)
        await ws.send_bytes(SIO_CONNECT)
        await ws.receive(timeout=5)
        for frame in malformed_frames(5000):
            await ws.send_bytes(frame)
        # The connection is still served, in order, after all of it.
        await ws.send_bytes(
            msgpack.packb({"type": 2, "nsp": "/", "data": ["room.list", {}], "id": 1})
        )
        while True:
            msg = await ws.receive(timeout=10)
            if msg.type is aiohttp.WSMsgType.BINARY and msgpack.unpackb(msg.data).get("id") == 1:
                break
    # A malformed HTTP request with the same text, on its own connection.
    reader, writer = await asyncio.open_connection(HOST, node.port)
    writer.write(f"GET /{MARK}\x00 HTTP/1.1\r\nHost: {MARK}\r\n\r\n".encode())
    await writer.drain()
    await reader.read(1000)
    writer.close()

    refused = await metric(node, "chatserver_refused_input_total")
    assert refused == 5000
    await asyncio.sleep(0.3)  # let the log catch up
    new_lines = node.logs().splitlines()[before:]
    print(f"\n5,000 malformed frames: refused {refused:.0f}, {len(new_lines)} new log lines")
    assert len(new_lines) < 100, new_lines[:20]
    assert not [line for line in new_lines if MARK in line], new_lines[-3:]
    assert not [line for line in new_lines if '"level": "error"' in line]


def half_open(port: int, send: bytes) -> socket.socket:
    sock = socket.create_connection((HOST, port))
    if send:
        sock.sendall(send)
    sock.setblocking(False)
    return sock


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


async def test_connections_that_never_finish_their_headers_are_closed_at_the_deadline(
    chat_nodes: ChatNodesFactory,
) -> None:
    (node,) = await chat_nodes(1, header_timeout_s=1.0)
    started = time.monotonic()
    socks = [half_open(node.port, b"") for _ in range(20)]
    socks += [half_open(node.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n") for _ in range(20)]
    trickle = socks[20:30]
    try:
        deadline = started + 1.0 + 2.0
        while time.monotonic() < deadline and not all(closed_by_peer(s) for s in socks):
            for s in trickle:  # a slowloris: a header byte every 200 ms does not buy more time
                with contextlib.suppress(OSError):
                    s.send(b"X")
            await asyncio.sleep(0.2)
        open_ones = [s for s in socks if not closed_by_peer(s)]
        print(f"\nhalf-open connections closed after {time.monotonic() - started:.2f} s")
        assert open_ones == [], (
            f"{len(open_ones)} still open after {time.monotonic() - started:.1f} s"
        )
    finally:
        for s in socks:
            s.close()


async def test_websockets_without_a_socketio_connect_are_closed_and_capped_per_address(
    chat_nodes: ChatNodesFactory,
) -> None:
    (node,) = await chat_nodes(
        1,
        header_timeout_s=1.0,
        connect_timeout_s=1.5,
        max_pending_per_address=5,
        address_limit_exempt="",
    )
    url = node.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        # A real client connects and stays connected well past both deadlines.
        client = ChatClient(node.url)
        await client.connect()
        silent = [await http.ws_connect(url) for _ in range(5)]
        for ws in silent:
            assert (await ws.receive(timeout=5)).data.startswith("0{")
        # The address group holds its share: the next one is refused before it opens.
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url)
        assert refused.value.status == 401
        started = time.monotonic()
        for ws in silent:
            msg = await ws.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 3009
        assert time.monotonic() - started < 1.5 + 1.0
        # Their share is free again, and the real client is still there.
        again = await http.ws_connect(url)
        await again.receive(timeout=5)
        await again.send_bytes(SIO_CONNECT)
        assert msgpack.unpackb((await again.receive(timeout=5)).data)["type"] == 0
        await again.close()
        await asyncio.sleep(1.0)
        assert client.connected
        assert (await client.call("room.list", {}))["ok"]
        await client.close()
    assert await metric(node, "chatserver_refused_input_total") == 6  # 5 lapsed, 1 over the cap


async def test_no_redis_key_outlives_its_rooms_once_every_node_is_gone(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory
) -> None:
    a, b = await chat_nodes(2, redis=redis_server, max_lifetime_s=600)
    creator = ChatClient(a.url)
    await creator.connect()
    private = await creator.create_room()
    listed = await creator.create_room(listed=True, topic="keys")
    await creator.close()
    members = [
        await join_member(name, node.url, link)
        for link in (private.link, listed.link)
        for name, node in (("ann", a), ("bob", b))
    ]
    for m in members:
        await m.wait_for(lambda m: len(m.room.members) == 2, "both joined", 10)
        await m.room.send("hello")
    # One member goes away without leaving, so its seat (and mailbox) waits for the grace.
    await members[0].close(leave=False)
    redis = redis_server.client()
    await wait_until(lambda: True, "settled", 0.5)
    await a.kill()
    await b.kill()
    await close_all(members[1:])
    keys = [k async for k in redis.scan_iter("*")]
    assert keys, "the rooms wrote nothing to Redis?"
    lasting = {k.decode(): await redis.pttl(k) for k in keys}
    assert [k for k, ttl in lasting.items() if ttl < 0] == [], lasting
    await redis.aclose()
