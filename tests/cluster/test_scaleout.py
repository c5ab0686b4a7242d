"""Acceptance of the scale-out (issue 4), with real processes: redis-server (or a 3-master Redis
Cluster), chatserver nodes and nginx rendered from deploy/nginx.conf, all on free ports.

- Clients through nginx land on different nodes and share a room: every message at every member,
  in one order, with sequence numbers without holes (also on Redis Cluster).
- kill -9 of a node during a steady stream: its members come back through nginx and resume; every
  acknowledged message is at every member once, in order; a member that does not come back leaves
  presence within the bound, announced once.
- A node without members in a room reads none of its traffic.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence

from chatserver.client import ChatClient, ChatError, Sent
from tests.cluster.conftest import ChatNodesFactory, NginxFactory
from tests.cluster.harness import ChatNode, RedisCluster, RedisServer
from tests.cluster.scaleout_helpers import (
    FAST,
    Member,
    assert_all_acked_once_in_order,
    assert_contiguous,
    assert_no_decrypt_failures,
    client_list,
    close_all,
    entries_of,
    join_member,
    metric,
    room_channel,
    send_stream,
    subscribers,
    wait_until,
)


async def shared_room(
    urls: Sequence[str], nodes: Sequence[ChatNode], senders: int, per_sender: int, rate: float
) -> None:
    """Members on `urls` (one each) join one listed room; `senders` of them send interleaved
    streams; every member sees every message in the same order, seqs without holes."""
    members: list[Member] = []
    creator = ChatClient(urls[0])
    await creator.connect()
    try:
        created = await creator.create_room(listed=True, topic="scaleout")
        for i, url in enumerate(urls):
            members.append(await join_member(f"m{i}", url, created.link, nodes=nodes))
        listed = await creator.list_rooms(topic="scaleout")
        assert created.room_id in [r["room_id"] for r in listed]
        landed = {m.node.port for m in members if m.node is not None}
        assert len(landed) >= 2, f"all clients landed on one node: {landed}"
        for m in members:
            await m.wait_for(lambda m: len(m.room.members) == len(urls), "everyone joined", 10)

        acked: dict[str, Sent] = {}
        await asyncio.gather(
            *(send_stream(s, s.name, per_sender, rate, acked) for s in members[:senders])
        )
        assert len(acked) == senders * per_sender
        for m in members:
            await m.wait_texts(acked, 10)
        assert_no_decrypt_failures(members)
        assert_all_acked_once_in_order(members, acked)
        for m in members:
            assert_contiguous(m)
            # Own messages come back marked own, the others' not.
            for msg in m.messages():
                assert msg.own == msg.text.startswith(f"{m.name}-"), (m.name, msg.text)
        # The interleaving really happened: senders alternate in the one order.
        order = [msg.text.split("-")[0] for msg in members[-1].messages()]
        switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
        assert switches >= senders, order
    finally:
        await creator.close()
        await close_all(members)


async def test_clients_through_nginx_share_a_room_in_one_order(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory, nginx: NginxFactory
) -> None:
    async with asyncio.timeout(45):
        nodes = await chat_nodes(3, redis=redis_server, **FAST)
        lb = await nginx(nodes)
        await shared_room([lb.url] * 6, nodes, senders=3, per_sender=15, rate=30)


async def test_room_on_a_redis_cluster(
    redis_cluster: RedisCluster, chat_nodes: ChatNodesFactory
) -> None:
    async with asyncio.timeout(45):
        a, b = await chat_nodes(2, redis=redis_cluster, redis_cluster=True, **FAST)
        await shared_room([a.url, b.url, a.url, b.url], [a, b], senders=2, per_sender=15, rate=30)


PRESENCE = {"presence_ttl_s": 3, "heartbeat_interval_s": 1, "resume_grace_s": 3}


async def test_kill_9_node_during_stream_loses_no_acked_message(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory, nginx: NginxFactory
) -> None:
    async with asyncio.timeout(60):
        nodes = await chat_nodes(3, redis=redis_server, **FAST, **PRESENCE)
        lb = await nginx(nodes)
        creator = ChatClient(lb.url)
        await creator.connect()
        created = await creator.create_room(listed=True, topic="kill")
        await creator.close()
        # Each member finds its node by the connection it adds: the creator's must be gone first.
        await wait_until(
            lambda: sum(n.connections for n in nodes) == 0, "the creator's connection closed", 5
        )
        members: list[Member] = []
        ghost: Member | None = None
        try:
            for i in range(6):
                members.append(await join_member(f"m{i}", lb.url, created.link, nodes=nodes))
            by_node = {n.port: [m for m in members if m.node is n] for n in nodes}
            victim = max(nodes, key=lambda n: len(by_node[n.port]))
            on_victim = by_node[victim.port]
            survivors = [m for m in members if m.node is not victim]
            assert on_victim and survivors, by_node
            # One member on the victim directly: it cannot come back (it never closes cleanly).
            ghost = await join_member("ghost", victim.url, created.link)
            everyone = [*members, ghost]
            for m in everyone:
                await m.wait_for(lambda m: len(m.room.members) == 7, "everyone joined", 10)

            acked: dict[str, Sent] = {}
            errors: list[tuple[float, str, ChatError]] = []
            loop = asyncio.get_running_loop()
            streams = [
                asyncio.create_task(send_stream(s, s.name, 140, 20, acked, errors))
                for s in (survivors[0], on_victim[0])
            ]
            await asyncio.sleep(1.5)
            await victim.kill()
            killed_at = loop.time()
            await ghost.close(leave=False)  # it would retry the dead node forever
            await asyncio.gather(*streams)
            assert not errors, f"sends refused: {[(t, e.code) for _, t, e in errors][:5]}"

            for m in members:
                await m.wait_texts(acked, 15)
            for m in on_victim:
                back = m.reconnects()
                assert back and back[0].resumed and not back[0].gap, (m.name, back)
            assert_no_decrypt_failures(members)
            assert_all_acked_once_in_order(members, acked)
            for m in members:
                assert_contiguous(m)

            # The ghost is gone from presence within the bound, announced exactly once at each
            # remaining member; nobody else left.
            bound = PRESENCE["presence_ttl_s"] + 1.0 + 2.0  # ttl + sweep interval + slack
            for m in members:
                await m.wait_for(
                    lambda m: any(e.member_id == ghost.member_id for _, e in m.left()),
                    "the ghost's member.left",
                    max(0.1, killed_at + bound + 1 - loop.time()),
                )
            await asyncio.sleep(1.5)  # a second announcement would arrive by now
            for m in members:
                lefts = m.left()
                assert [e.member_id for _, e in lefts] == [ghost.member_id], (m.name, lefts)
                at, event = lefts[0]
                assert event.reason == "disconnected", event
                assert at - killed_at <= bound, f"{m.name}: left after {at - killed_at:.1f}s"
                assert ghost.member_id not in m.room.members
                assert set(m.room.members) == {x.member_id for x in members}, m.name
        finally:
            await close_all([*members, *([ghost] if ghost else [])])


async def test_node_without_members_reads_none_of_the_room_traffic(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory
) -> None:
    async with asyncio.timeout(40):
        a, b, c = await chat_nodes(3, redis=redis_server, **FAST)
        creator = ChatClient(a.url)
        await creator.connect()
        created = await creator.create_room(listed=True, topic="quiet")
        await creator.close()
        channel = room_channel(created.room_id)
        redis = redis_server.client(decode_responses=True)
        members: list[Member] = []
        try:
            members = [
                await join_member(name, node.url, created.link)
                for name, node in (("a1", a), ("a2", a), ("b1", b))
            ]
            for m in members:
                await m.wait_for(lambda m: len(m.room.members) == 3, "everyone joined", 10)

            async def numsub() -> int:
                reply = await redis.execute_command("PUBSUB", "SHARDNUMSUB", channel)
                return int(reply[1])

            async def read_by(node: ChatNode) -> float | None:
                return await metric(node, "chatserver_pubsub_messages_total")

            assert await numsub() == 2  # A and B, not C
            assert channel in await redis.execute_command("PUBSUB", "SHARDCHANNELS")
            clients = await client_list(redis)
            ssub = {
                n.name: [
                    int(e["ssub"]) for e in subscribers(entries_of(n, clients, redis_server.port))
                ]
                for n in (a, b, c)
            }
            # Each node listens on one connection: A and B to the room and their own channel,
            # C to its own channel only.
            assert ssub == {a.name: [2], b.name: [2], c.name: [1]}, ssub

            before = {n.name: await read_by(n) for n in (a, b, c)}
            acked: dict[str, Sent] = {}
            await asyncio.gather(
                send_stream(members[0], "a1", 20, 50, acked),
                send_stream(members[2], "b1", 20, 50, acked),
            )
            for m in members:
                await m.wait_texts(acked, 10)
            assert_all_acked_once_in_order(members, acked)
            after = {n.name: await read_by(n) for n in (a, b, c)}
            if before[c.name] is not None:
                assert after[c.name] == before[c.name], (before, after)  # C read none
                for n in (a, b):
                    assert after[n.name] - before[n.name] >= 40, (before, after)

            # A member on C subscribes C; when it leaves, C unsubscribes and reads nothing more.
            visitor = await join_member("c1", c.url, created.link)
            members.append(visitor)
            await wait_until(_eq(numsub, 3), "C subscribed to the room", 5)
            await visitor.room.leave()
            await wait_until(_eq(numsub, 2), "C unsubscribed from the room", 5)
            await asyncio.sleep(0.3)
            quiet = await read_by(c)
            more: dict[str, Sent] = {}
            await send_stream(members[0], "again", 20, 50, more)
            for m in members[:3]:
                await m.wait_texts(more, 10)
            if quiet is not None:
                assert await read_by(c) == quiet
        finally:
            await redis.aclose()
            await close_all(members)


def _eq(probe: Callable[[], Awaitable[int]], value: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(await probe() == value)

    return check
