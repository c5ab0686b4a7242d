"""`RoomBus.send_direct_many` on a real 3-master Redis Cluster: the room's mailboxes are one slot
(one script), while the holders' node channels live in other slots and shards (one pipeline of
SPUBLISH routed per shard). Every recipient's node gets its event, and only its own."""

from __future__ import annotations

import asyncio
import secrets

from redis.asyncio.cluster import RedisCluster as ClusterClient

from chatserver.backends.redis.bus import RedisRoomBus
from chatserver.backends.redis.conn import Keys, connect
from chatserver.backends.redis.presence import RedisPresence
from chatserver.ports import WireEvent
from tests.cluster.harness import RedisCluster
from tests.conftest import MovableClock
from tests.contracts.test_seams import Recorder

ROOM = "R" * 21 + "A"


def key_for(member_id: str) -> WireEvent:
    return {"t": "key", "room_id": ROOM, "skd": f"sealed for {member_id}".encode()}


async def test_a_direct_batch_reaches_holders_on_every_shard(redis_cluster: RedisCluster) -> None:
    clock = MovableClock()
    keys = Keys(f"t{secrets.token_hex(4)}")
    shared = connect(redis_cluster.url, cluster=True)
    assert isinstance(shared, ClusterClient)
    presence = RedisPresence(shared, keys, 3600.0)
    # Enough nodes that their channels spread over the cluster's shards (and not the room's slot).
    node_ids = [f"n{i}" for i in range(6)]
    slots = {shared.keyslot(keys.node_channel(n)) for n in node_ids}
    assert len(slots) == len(node_ids) and shared.keyslot(keys.room(ROOM, "holders")) not in slots
    clients = [connect(redis_cluster.url, cluster=True) for _ in node_ids]
    for client in clients:
        await client.initialize()  # the slot map, before a pub/sub asks it for a channel's shard
    buses = [
        RedisRoomBus(client, keys, clock, n, 120.0, 50, 3600.0)
        for client, n in zip(clients, node_ids, strict=True)
    ]
    try:
        recorders = [Recorder(bus) for bus in buses]
        for bus in buses:
            await bus.start()
            assert bus.healthy()
        members = {f"M{i}": node_ids[i % len(node_ids)] for i in range(40)}
        for member_id, node_id in members.items():
            await presence.touch(ROOM, member_id, node_id, deadline=clock.now() + 30)
        deliveries = [(m, key_for(m)) for m in [*members, "nobody-holds-me"]]
        await buses[0].send_direct_many(ROOM, deliveries)
        for node_id, recorder in zip(node_ids, recorders, strict=True):
            mine = sorted((ROOM, m, key_for(m)) for m, n in members.items() if n == node_id)
            got = await recorder.wait(len(mine), "direct")
            assert sorted(got) == mine
        await asyncio.sleep(0.1)
        assert sum(len(r.direct) for r in recorders) == len(members)
        for member_id, event in deliveries:
            assert await buses[3].mailbox(ROOM, member_id) == [event]
    finally:
        for bus in buses:
            await bus.close()
        await shared.aclose()
