"""Reading a real 3-master Redis Cluster's sharded pub/sub: one blocking reader per shard, no polling.

A quiet room's first message crosses nodes within milliseconds (a poll with an idle back-off put
up to 50 ms on it), an idle node costs next to no CPU, and a shard connection killed under the
listener is noticed and recovered without losing what was sent meanwhile."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient

from chatserver.backends.redis.bus import RedisRoomBus
from chatserver.backends.redis.conn import Keys, connect
from chatserver.client import ChatClient
from chatserver.ports import WireEvent
from tests.cluster.conftest import ChatNodesFactory
from tests.cluster.harness import RedisCluster
from tests.conftest import MovableClock
from tests.contracts.test_seams import Recorder


def rooms_on_every_shard(client: ClusterClient, keys: Keys, count: int) -> list[str]:
    """Room ids whose channels spread over all the cluster's shards."""
    rooms: list[str] = []
    shards: dict[str, int] = {}
    while len(rooms) < count:
        room_id = secrets.token_urlsafe(16)
        node = client.get_node_from_key(keys.room_channel(room_id))
        assert node is not None
        if shards.get(node.name, 0) <= len(rooms) // 3:
            shards[node.name] = shards.get(node.name, 0) + 1
            rooms.append(room_id)
    assert len(shards) == 3
    return rooms


async def two_buses(cluster: RedisCluster) -> AsyncIterator[tuple[RedisRoomBus, RedisRoomBus]]:
    keys = Keys(f"t{secrets.token_hex(4)}")
    clients = [connect(cluster.url, cluster=True) for _ in range(2)]
    for client in clients:
        await client.initialize()
    buses = [
        RedisRoomBus(c, keys, MovableClock(), f"n{i}", 120.0, 50, 3600.0)
        for i, c in enumerate(clients)
    ]
    for bus in buses:
        await bus.start()
        assert bus.healthy()
    try:
        yield buses[0], buses[1]
    finally:
        for bus in buses:
            await bus.close()


@pytest.fixture
async def buses(redis_cluster: RedisCluster) -> AsyncIterator[tuple[RedisRoomBus, RedisRoomBus]]:
    async for pair in two_buses(redis_cluster):
        yield pair


def event(room_id: str, n: int) -> WireEvent:
    return {"t": "msg", "room_id": room_id, "ts": n, "env": b"x" * 32}


class Arrivals(Recorder):
    """A Recorder that wakes its waiter the moment an event lands (no polling in the test)."""

    def __init__(self, bus: RedisRoomBus) -> None:
        super().__init__(bus)
        self.arrived = asyncio.Event()

    async def room_event(self, room_id: str, event: WireEvent) -> None:
        await super().room_event(room_id, event)
        self.arrived.set()

    async def next(self, count: int) -> None:
        while len(self.room) < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 5)


async def test_a_quiet_rooms_first_message_crosses_nodes_at_once(
    buses: tuple[RedisRoomBus, RedisRoomBus],
) -> None:
    sender, holder = buses
    assert isinstance(holder._redis, ClusterClient)
    rooms = rooms_on_every_shard(holder._redis, holder._keys, 30)
    got = Arrivals(holder)
    for room_id in rooms:
        await holder.subscribe(room_id)
    latencies = []
    for n, room_id in enumerate(rooms):
        await asyncio.sleep(0.15)  # quiet: a poll would have backed off to its longest sleep
        started = time.perf_counter()
        await sender.append(room_id, event(room_id, n))
        await got.next(n + 1)
        latencies.append((time.perf_counter() - started) * 1000)
    assert [room_id for room_id, _ in got.room] == rooms
    median, worst = statistics.median(latencies), max(latencies)
    print(f"first message across nodes: p50 {median:.2f} ms, max {worst:.2f} ms")
    # The poll's idle back-off (up to 50 ms) put the median near 25 ms.
    assert median < 10, latencies


async def test_an_idle_node_does_not_poll(
    redis_cluster: RedisCluster, chat_nodes: ChatNodesFactory
) -> None:
    [node] = await chat_nodes(
        1, redis=redis_cluster, redis_cluster=True, create_burst=20, address_create_burst=20
    )
    async with ChatClient(node.url) as chat:
        # Rooms whose channels the node subscribes (on several shards), one member each; then
        # nothing happens.
        for _ in range(6):
            created = await chat.create_room(listed=False)
            await chat.join(created.link)
        await asyncio.sleep(1.0)
        before = cpu_seconds(node.process.pid)
        await asyncio.sleep(5.0)
        used = cpu_seconds(node.process.pid) - before
    print(f"idle node CPU over 5 s: {used:.3f} s")
    assert used < 0.05  # under 1%


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


async def test_a_killed_shard_connection_is_recovered_without_loss(
    buses: tuple[RedisRoomBus, RedisRoomBus], redis_cluster: RedisCluster
) -> None:
    sender, holder = buses
    assert isinstance(holder._redis, ClusterClient)
    rooms = rooms_on_every_shard(holder._redis, holder._keys, 3)
    got = Recorder(holder)
    for room_id in rooms:
        await holder.subscribe(room_id)
    for room_id in rooms:
        await sender.append(room_id, event(room_id, 0))
    await got.wait(3)
    reconnects = holder.reconnects
    # Kill every pub/sub connection on one shard: its reader fails, the listener reconnects.
    server = redis_cluster.servers[0]
    admin = server.client()
    try:
        await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    finally:
        await admin.aclose()
    for n in range(1, 6):
        for room_id in rooms:
            await sender.append(room_id, event(room_id, n))
    await got.wait(3 + 15)
    assert holder.reconnects > reconnects
    for room_id in rooms:
        seqs = [e["seq"] for r, e in got.room if r == room_id]
        assert seqs == [1, 2, 3, 4, 5, 6], (room_id, seqs)
