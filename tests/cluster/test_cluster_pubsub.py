"""Sharded pub/sub on a real 3-master Redis Cluster, read without polling: one blocking reader per
shard connection (chatserver/backends/redis/cluster_pubsub.py).

On the bus (two RedisRoomBus on one cluster):
- a quiet room's first message crosses nodes within milliseconds (a poll with an idle back-off put
  up to 50 ms on it), over rooms on every shard, subscribed while the listener runs;
- a shard connection killed under the listener is noticed and recovered without loss;
- a room whose slot moves to another shard (resharding: the server unsubscribes the channel) is
  noticed, resubscribed on the new owner, and what was sent meanwhile is filled from the stream.

End to end (two chatserver nodes, clients on each):
- a quiet room's first message, rooms on all three shards: p50 and p99 of send-to-receive;
- an idle node holding rooms on all three shards uses almost no CPU;
- CLIENT KILL TYPE pubsub on one shard: both nodes reconnect, every message arrives once, in order.

The end-to-end helpers are shared with bench/cluster_pubsub.py (the figures for the docs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient

from chatserver.backends.redis.bus import RedisRoomBus
from chatserver.backends.redis.conn import Keys, connect
from chatserver.client import ChatClient, Message, Room
from chatserver.ports import WireEvent
from tests.cluster.conftest import ChatNodesFactory
from tests.cluster.harness import ChatNode, RedisCluster, RedisServer
from tests.cluster.scaleout_helpers import FAST, client_list, metric, room_channel, wait_until
from tests.conftest import MovableClock
from tests.contracts.test_seams import Recorder

# --- on the bus ------------------------------------------------------------------------------


def room_ids_on_every_shard(client: ClusterClient, keys: Keys, count: int) -> list[str]:
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
    rooms = room_ids_on_every_shard(holder._redis, holder._keys, 30)
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


async def test_a_killed_shard_connection_is_recovered_without_loss(
    buses: tuple[RedisRoomBus, RedisRoomBus], redis_cluster: RedisCluster
) -> None:
    sender, holder = buses
    assert isinstance(holder._redis, ClusterClient)
    rooms = room_ids_on_every_shard(holder._redis, holder._keys, 3)
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


async def node_id(server: RedisServer) -> str:
    client = server.client(decode_responses=True)
    try:
        return str(await client.execute_command("CLUSTER", "MYID"))
    finally:
        await client.aclose()


async def move_slot(
    cluster: RedisCluster, slot: int, source: RedisServer, target: RedisServer
) -> None:
    """Reshard one slot with its keys, as `redis-cli --cluster reshard` does."""
    src, dst = source.client(), target.client()
    try:
        src_id, dst_id = await node_id(source), await node_id(target)
        await dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        await src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        keys = await src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        if keys:
            await src.execute_command(
                "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys
            )
        for server in cluster.servers:  # the owner first, then the others
            client = server.client()
            try:
                await client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
            finally:
                await client.aclose()
    finally:
        await src.aclose()
        await dst.aclose()


async def test_a_room_whose_slot_moves_is_resubscribed_on_its_new_shard() -> None:
    # Its own cluster: the shared one must keep its slot map.
    cluster = RedisCluster()
    try:
        await cluster.start()
        async for sender, holder in two_buses(cluster):
            assert isinstance(holder._redis, ClusterClient)
            room_id = secrets.token_urlsafe(16)
            slot = holder._redis.keyslot(holder._keys.room_channel(room_id))
            owner = holder._redis.get_node_from_key(holder._keys.room_channel(room_id))
            assert owner is not None
            source = next(s for s in cluster.servers if s.port == owner.port)
            target = next(s for s in cluster.servers if s is not source)
            got = Arrivals(holder)
            await holder.subscribe(room_id)
            await sender.append(room_id, event(room_id, 1))
            await got.next(1)
            reconnects = holder.reconnects
            await move_slot(cluster, slot, source, target)
            # The sender's client follows the MOVED reply; the holder was told by the server that
            # its subscription ended, reconnects, subscribes on the new owner and fills the gap.
            for n in range(2, 6):
                await sender.append(room_id, event(room_id, n))
            await got.next(5)
            assert holder.reconnects > reconnects
            assert [e["seq"] for _, e in got.room] == [1, 2, 3, 4, 5]
            # And it listens on the new owner: a fresh message arrives without a gap fill.
            await sender.append(room_id, event(room_id, 6))
            await got.next(6)
            assert [e["seq"] for _, e in got.room] == [1, 2, 3, 4, 5, 6]
            assert holder.reconnects == reconnects + 1
    finally:
        cluster.cleanup()


# --- end to end ------------------------------------------------------------------------------

# Many rooms on one connection; the cluster-wide create limit out of the way.
SETTINGS = {**FAST, "rooms_per_connection": 64, "cluster_create_rate_per_s": 100}
ROOMS_PER_CLIENT = 60


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used (/proc/<pid>/stat utime + stime)."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces: count the fields after its closing paren.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quantile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99) of `values` (at least two)."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Pair:
    """One room with a sender on node A and a receiver on node B; `shard` is the port of the
    cluster master that holds the room's channel."""

    shard: int
    sender: Room
    receiver: Room
    arrived: dict[str, float] = field(default_factory=dict)
    received: list[tuple[int, str]] = field(default_factory=list)  # (seq, text) as delivered
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def collect(self) -> None:
        async for event in self.receiver.events():
            if isinstance(event, Message):
                self.arrived[event.text] = time.perf_counter()
                self.received.append((event.seq, event.text))
                self.changed.set()

    async def wait(self, text: str, timeout: float) -> float:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in self.arrived:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"{text!r} not at the receiver within {timeout}s")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return self.arrived[text]


@dataclass
class Rooms:
    pairs: list[Pair]
    clients: list[ChatClient]

    async def close(self) -> None:
        for pair in self.pairs:
            if pair.task is not None:
                pair.task.cancel()
        for client in self.clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(leave=False), 5)


async def rooms_on_every_shard(
    cluster: RedisCluster, a: ChatNode, b: ChatNode, per_shard: int
) -> Rooms:
    """`per_shard` rooms on each master (by the slot of the room's channel), interleaved by shard,
    each with a sender on `a` and a receiver on `b`, warmed up (the sender keys are out)."""
    redis = cluster.client()
    await redis.initialize()
    clients: list[ChatClient] = []
    pairs: list[Pair] = []
    counts = dict.fromkeys(cluster.ports, 0)
    try:
        senders: list[ChatClient] = []
        receivers: list[ChatClient] = []
        attempts = 0
        while min(counts.values()) < per_shard:
            attempts += 1
            assert attempts < per_shard * 3 * 10, f"rooms do not spread over the shards: {counts}"
            if len(senders) * ROOMS_PER_CLIENT <= len(pairs):
                senders.append(ChatClient(a.url))
                receivers.append(ChatClient(b.url))
                clients += [senders[-1], receivers[-1]]
                await senders[-1].connect()
                await receivers[-1].connect()
            # The room id comes with the link, made by the client: keep the ones on a shard that
            # still needs rooms (a room nobody joined is swept later).
            created = await senders[-1].create_room()
            shard = redis.get_node_from_key(room_channel(created.room_id)).port
            if counts[shard] >= per_shard:
                continue
            counts[shard] += 1
            pair = Pair(
                shard,
                await senders[-1].join(created.link),
                await receivers[-1].join(created.link),
            )
            pair.task = asyncio.create_task(pair.collect())
            pairs.append(pair)
        rooms = Rooms(interleave(pairs), clients)
        for pair in rooms.pairs:
            await pair.sender.send("warmup")
            await pair.wait("warmup", 10)
        return rooms
    except BaseException:
        await Rooms(pairs, clients).close()
        raise
    finally:
        await redis.aclose()


def interleave(pairs: list[Pair]) -> list[Pair]:
    """Round robin over the shards, so consecutive quiet messages cross different shards."""
    by_shard: dict[int, list[Pair]] = {}
    for pair in pairs:
        by_shard.setdefault(pair.shard, []).append(pair)
    out: list[Pair] = []
    while any(by_shard.values()):
        for queue in by_shard.values():
            if queue:
                out.append(queue.pop(0))
    return out


async def quiet_first_messages(
    pairs: list[Pair], rounds: int, idle_s: float, tag: str = "q"
) -> list[float]:
    """For each round and room: both nodes idle for `idle_s`, then one message; the milliseconds
    from the sender's `send` to the message at the receiver (one process, one clock)."""
    latencies = []
    for r in range(rounds):
        for i, pair in enumerate(pairs):
            await asyncio.sleep(idle_s)
            text = f"{tag}{r}-{i}"
            start = time.perf_counter()
            await pair.sender.send(text)
            latencies.append((await pair.wait(text, 10) - start) * 1000)
    return latencies


async def idle_cpu_percent(node: ChatNode, seconds: float) -> float:
    before = cpu_seconds(node.pid)
    await asyncio.sleep(seconds)
    return (cpu_seconds(node.pid) - before) / seconds * 100


async def test_a_quiet_rooms_first_message_crosses_nodes_without_a_poll_delay(
    redis_cluster: RedisCluster, chat_nodes: ChatNodesFactory
) -> None:
    async with asyncio.timeout(90):
        a, b = await chat_nodes(2, redis=redis_cluster, redis_cluster=True, **SETTINGS)
        rooms = await rooms_on_every_shard(redis_cluster, a, b, per_shard=2)
        try:
            # 6 rooms (2 per shard) x 5 rounds: 30 first messages after 0.4 s of quiet, each long
            # enough for a polling reader to reach its longest back-off.
            latencies = await quiet_first_messages(rooms.pairs, rounds=5, idle_s=0.4)
        finally:
            await rooms.close()
    p50, p99 = quantile(latencies, 50), quantile(latencies, 99)
    print(f"\nquiet first message across nodes: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {max(latencies):.1f} ms (n={len(latencies)})")  # fmt: skip
    # The polling reader (an idle back-off of up to 50 ms) measured p50 17.6 ms, p99 24 ms here,
    # not one quiet message under 13 ms; a blocking read leaves the send, two websocket hops, the
    # script and the publish: p50 3 to 5 ms. The tail is this shared 2-core machine's scheduling
    # (a p99 bound of 20 ms failed on single 40 to 110 ms outliers at a load average of 5): the
    # bounds are on the median and on most messages, and a stuck reader would take seconds.
    fast = sum(1 for ms in latencies if ms < 10)
    assert p50 < 10, sorted(latencies)
    assert fast >= len(latencies) * 2 // 3, sorted(latencies)
    assert max(latencies) < 500, sorted(latencies)


async def test_an_idle_node_does_not_poll_its_shards(
    redis_cluster: RedisCluster, chat_nodes: ChatNodesFactory
) -> None:
    async with asyncio.timeout(60):
        # Heartbeats and sweeps are the node's own periodic work, not the reader: out of the way.
        a, b = await chat_nodes(
            2,
            redis=redis_cluster,
            redis_cluster=True,
            heartbeat_interval_s=60,
            presence_ttl_s=300,
            **SETTINGS,
        )
        rooms = await rooms_on_every_shard(redis_cluster, a, b, per_shard=3)
        try:
            await asyncio.sleep(1.0)  # the joins' aftermath settles
            used = (await idle_cpu_percent(b, 5.0)) * 5.0 / 100
        finally:
            await rooms.close()
    print(f"\nidle node CPU over 5 s: {used * 1000:.1f} ms ({used / 5 * 100:.2f} %)")
    # The polling reader used 0.8% here (40 ms in 5 s): under the 1%, so the bound is
    # half that; a blocking reader wakes only for traffic (0 to 10 ms, one clock tick).
    assert used < 0.025, f"an idle node used {used:.3f} s of CPU in 5 s"


async def test_a_killed_shard_connection_is_noticed_and_the_gap_filled(
    redis_cluster: RedisCluster, chat_nodes: ChatNodesFactory
) -> None:
    async with asyncio.timeout(90):
        a, b = await chat_nodes(2, redis=redis_cluster, redis_cluster=True, **SETTINGS)
        rooms = await rooms_on_every_shard(redis_cluster, a, b, per_shard=1)
        shard = next(s for s in redis_cluster.servers if s.port == rooms.pairs[0].shard)
        direct = shard.client()
        try:
            before = await metric(b, "chatserver_backend_reconnects_total")
            sent: dict[str, list[tuple[int, str]]] = {p.receiver.room_id: [] for p in rooms.pairs}

            async def stream(count: int, tag: str) -> None:
                for i in range(count):
                    for pair in rooms.pairs:
                        ack = await pair.sender.send(f"{tag}{i}")
                        sent[pair.receiver.room_id].append((ack.seq, f"{tag}{i}"))
                    await asyncio.sleep(0.01)

            sending = asyncio.create_task(stream(60, "s"))
            await asyncio.sleep(0.3)
            # Both nodes' pub/sub connections to this one shard; the other shards' stay up.
            killed = int(await direct.execute_command("CLIENT", "KILL", "TYPE", "pubsub"))
            assert killed >= 2, killed
            await sending

            async def resubscribed() -> bool:
                return sum(1 for c in await client_list(direct) if int(c.get("ssub", 0))) >= 2

            await wait_until(resubscribed, "both nodes subscribed on the shard again", 10)
            await stream(5, "after")
            for pair in rooms.pairs:
                await pair.wait("after4", 10)
                await asyncio.sleep(0.2)  # a duplicate would come right behind
                # Each once, in order, at the seq its sender was acknowledged with.
                got = [(seq, text) for seq, text in pair.received if text != "warmup"]
                assert got == sent[pair.receiver.room_id], pair.shard
            after = await metric(b, "chatserver_backend_reconnects_total")
            if before is not None and after is not None:
                assert after > before, "the killed connection went unnoticed"
        finally:
            await rooms.close()
            await direct.aclose()
