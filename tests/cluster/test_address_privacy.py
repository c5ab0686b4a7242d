"""Anonymity against the operator's own Redis and logs, with real processes: one person's seats in
two rooms on two nodes leave nothing equal in Redis, no address key of anyone who was not banned,
and no address in any log line at DEBUG."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket

import aiohttp
import msgpack
import redis.asyncio as aioredis

from chatserver.client import ChatClient
from tests.cluster.conftest import ChatNodesFactory, NginxFactory
from tests.cluster.harness import HOST, RedisServer
from tests.cluster.scaleout_helpers import close_all, join_member

DISTINCT = "127.0.0.77"  # a loopback address nothing else uses: any trace of it is a leak


async def atoms_of(redis: aioredis.Redis, key: bytes) -> set[bytes]:
    """Every stored value of a key, split into the parts a reader could compare."""
    kind = (await redis.type(key)).decode()
    parts: set[bytes] = set(key.split(b":"))
    if kind == "string":
        parts.add(await redis.get(key))
    elif kind == "hash":
        for field, value in (await redis.hgetall(key)).items():
            # A holders hash maps members to node ids: a node is not a person.
            parts |= {field} if key.endswith(b":holders") else {field, value}
    elif kind == "set":
        parts |= await redis.smembers(key)
    elif kind == "zset":
        parts |= {m for m, _ in await redis.zrange(key, 0, -1, withscores=True)}
        parts |= {p for m in list(parts) for p in m.split(b"|")}
    elif kind == "stream":
        for _, fields in await redis.xrange(key):
            for field, value in fields.items():
                parts |= {field, value}
    return {p for p in parts if len(p) >= 8}


async def test_one_address_in_two_rooms_on_two_nodes_leaves_nothing_equal_in_redis(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory
) -> None:
    a, b = await chat_nodes(2, redis=redis_server, address_limit_exempt="", log_level="debug")
    creator = ChatClient(a.url)
    await creator.connect()
    room_a = await creator.create_room(listed=True, topic="first")
    room_b = await creator.create_room(listed=True, topic="second")
    await creator.close()
    # One person (one address) in both rooms, one seat on each node; a second person in room A.
    mine_a = await join_member("seat one", a.url, room_a.link)
    mine_b = await join_member("seat two", b.url, room_b.link)
    other = await join_member("someone", b.url, room_a.link)
    for m in (mine_a, mine_b, other):
        await m.room.send("hello")
    redis = redis_server.client()
    try:
        keys = [k async for k in redis.scan_iter("*")]
        room_tags = {b"{" + r.room_id.encode() + b"}": r for r in (room_a, room_b)}
        by_room: dict[str, set[bytes]] = {room_a.room_id: set(), room_b.room_id: set()}
        shared: set[bytes] = set()
        for key in keys:
            atoms = await atoms_of(redis, key)
            tag = next((t for t in room_tags if t in key), None)
            if tag is None:
                shared |= atoms
            else:
                by_room[room_tags[tag].room_id] |= atoms - {b"{" + tag.strip(b"{}") + b"}"}
            assert b"salt" not in key and b"addr" not in key, key
        equal = by_room[room_a.room_id] & by_room[room_b.room_id]
        assert equal == set(), sorted(equal)[:5]
        # Nobody was banned: nothing anywhere is an address key.
        everything = b"".join(shared | by_room[room_a.room_id] | by_room[room_b.room_id])
        assert b"addr:" not in everything
    finally:
        await redis.aclose()
        await close_all([mine_a, mine_b, other])


async def test_no_address_in_any_log_line_at_debug(chat_nodes: ChatNodesFactory) -> None:
    (node,) = await chat_nodes(1, log_level="debug", address_limit_exempt="")
    # Malformed HTTP, a bad websocket upgrade and bad frames, all from one distinctive address.
    for request in (
        b"GARBAGE\x00 / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
        b"GET /socket.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: http://evil\r\n\r\n",
    ):
        with socket.create_connection((HOST, node.port), source_address=(DISTINCT, 0)) as s:
            s.sendall(request)
            s.settimeout(2)
            with contextlib.suppress(OSError):
                s.recv(4096)
    connector = aiohttp.TCPConnector(local_addr=(DISTINCT, 0))
    url = node.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession(connector=connector) as http, http.ws_connect(url) as ws:
        await ws.receive(timeout=5)
        await ws.send_bytes(msgpack.packb({"type": 0, "nsp": "/", "data": {}}))
        await ws.receive(timeout=5)
        for frame in (b"\xc1", msgpack.packb({"type": 2, "nsp": "/x", "data": ["a"]})):
            await ws.send_bytes(frame)
        await ws.send_bytes(
            msgpack.packb({"type": 2, "nsp": "/", "data": ["room.list", {}], "id": 1})
        )
        await ws.receive(timeout=5)
    await asyncio.sleep(0.3)
    logs = node.logs()
    assert DISTINCT not in logs
    assert not re.search(r"127\.0\.0\.77|::ffff:127", logs)


async def test_metrics_are_not_public(chat_nodes: ChatNodesFactory, nginx: NginxFactory) -> None:
    """Through the deploy/ nginx config: 404. On the node: only for a scraper on the allow-list
    (loopback by default), and never for a request a proxy forwarded."""
    (node,) = await chat_nodes(1)
    lb = await nginx([node])
    async with aiohttp.ClientSession() as http:
        async with http.get(lb.url + "/metrics") as r:
            assert r.status == 404
        async with http.get(node.url + "/metrics") as r:
            assert r.status == 200 and "chatserver_connections" in await r.text()
        async with http.get(node.url + "/metrics", headers={"X-Forwarded-For": "1.2.3.4"}) as r:
            assert r.status == 404
    (closed,) = await chat_nodes(1, metrics_allow="10.0.0.0/8")
    async with aiohttp.ClientSession() as http, http.get(closed.url + "/metrics") as r:
        assert r.status == 404
