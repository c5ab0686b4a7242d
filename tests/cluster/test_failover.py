"""Failover (issue 17), with real processes: redis-server, two chatserver nodes behind nginx.

- SIGKILL of a node while every room streams: each member of the dead node resumes its seat on
  the other node (same member id, no gap) and every member has every acknowledged message once,
  in order, with no envelope it cannot open, although a member of each room leaves meanwhile
  (the epoch moves: the new sender keys for the absent members wait in their mailboxes).
- A resume answered `unavailable` (Redis paused) keeps the seat: the client retries it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from chatserver.client import ChatClient, ChatError, KeyRejected, Reconnected, Sent
from tests.cluster.conftest import ChatNodesFactory, NginxFactory
from tests.cluster.harness import RedisServer
from tests.cluster.scaleout_helpers import (
    FAST,
    Member,
    assert_all_acked_once_in_order,
    assert_contiguous,
    assert_no_decrypt_failures,
    close_all,
    join_member,
    send_stream,
    wait_until,
)
from tests.cluster.test_redis_outage import refusals_counted

ROOMS = 8
NAMES = ("ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "jay", "kob", "owl", "pig")
PER_ROOM = len(NAMES) + 1  # 12 through nginx, and one on the node that stays
SENDERS = 3  # per room
RATE = 4.0  # messages per second per sender
STREAM_S = 7.0
KILL_AT_S = 2.0
# Seats outlive the failover (the dead node's seats lapse a presence TTL after its last
# heartbeat); nothing lapses during the test.
SETTINGS = {**FAST, "heartbeat_interval_s": 1, "presence_ttl_s": 15, "resume_grace_s": 15}


def rejected(member: Member) -> list[KeyRejected]:
    return [e for _, e in member.events if isinstance(e, KeyRejected)]


def _walk(rooms: list[list[Member]]) -> Iterator[Member]:
    for members in rooms:
        yield from members


async def test_kill_9_node_every_member_resumes_and_loses_nothing(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory, nginx: NginxFactory
) -> None:
    async with asyncio.timeout(90):
        survivor, victim = await chat_nodes(2, redis=redis_server, **SETTINGS)
        lb = await nginx([survivor, victim])
        creator = ChatClient(lb.url)
        await creator.connect()
        links = [
            (await creator.create_room(listed=True, topic=f"failover{r}")).link
            for r in range(ROOMS)
        ]
        await creator.close()
        rooms: list[list[Member]] = []
        loop = asyncio.get_running_loop()
        try:

            async def fill(r: int) -> list[Member]:
                # One after the other: a join's snapshot and sequence number are only consistent
                # with joins that were acknowledged before it (see the report of issue 17).
                members = [
                    await join_member(f"{name}{r}", lb.url, links[r], reconnect_timeout=60)
                    for name in NAMES
                ]
                # The last one on the node that stays, directly: it leaves during the failover.
                return [*members, await join_member(f"yak{r}", survivor.url, links[r])]

            filled = await asyncio.gather(*(fill(r) for r in range(ROOMS)), return_exceptions=True)
            rooms.extend(f for f in filled if isinstance(f, list))
            assert len(rooms) == ROOMS, [f for f in filled if not isinstance(f, list)]
            for m in _walk(rooms):
                await m.wait_for(
                    lambda m: len(m.room.members) == PER_ROOM,
                    f"everyone joined (knows {sorted(x.pseudonym for x in m.room.members.values())})",
                    20,
                )
            ids = {m.name: m.member_id for m in _walk(rooms)}

            acked = [dict[str, Sent]() for _ in rooms]
            errors: list[tuple[float, str, ChatError]] = []
            count = int(STREAM_S * RATE)
            streams = [
                asyncio.create_task(send_stream(s, s.name, count, RATE, acked[r], errors))
                for r, members in enumerate(rooms)
                for s in members[:SENDERS]
            ]
            await asyncio.sleep(KILL_AT_S)
            await victim.kill()
            killed_at = loop.time()
            # The epoch moves while the dead node's members are away: in every room, the member on
            # the node that stays leaves (every sender re-keys; the new keys for the absent members
            # wait in their mailboxes, for their resume on the other node).
            leavers = [members[-1] for members in rooms]
            await asyncio.gather(*(m.room.leave() for m in leavers))
            await asyncio.gather(*streams)
            assert not errors, [(t, e.code) for _, t, e in errors][:8]

            stayed = [[m for m in members if m not in leavers] for members in rooms]
            for r, members in enumerate(stayed):
                for m in members:
                    await m.wait_texts(acked[r], 20)
            moved = [m for m in _walk(stayed) if m.reconnects()]
            print(f"{len(moved)} members moved, {sum(map(len, acked))} acked")
            assert moved, "nobody was on the killed node"
            assert len(moved) < len(list(_walk(stayed))), "everyone was on the killed node"
            for m in _walk(stayed):
                assert m.member_id == ids[m.name], f"{m.name} rejoined with a new identity"
                back = m.reconnects()
                assert all(e.resumed and not e.gap for e in back), (m.name, back)
                assert len(back) <= 1, (m.name, back)
                assert not rejected(m), (m.name, rejected(m))
            assert_no_decrypt_failures(list(_walk(rooms)))
            for r, members in enumerate(stayed):
                assert_all_acked_once_in_order(members, acked[r], context=f"room {r}: ")
                for m in members:
                    assert_contiguous(m)
                    # Everyone who stayed saw the leaver go, once.
                    assert [e.member_id for _, e in m.left()] == [
                        x.member_id for x in leavers if x in rooms[r]
                    ], m.name
            back_after = max(t for m in moved for t, e in m.events if isinstance(e, Reconnected))
            assert back_after - killed_at < 15, f"back only {back_after - killed_at:.1f}s after"
        finally:
            await close_all(list(_walk(rooms)))


async def test_resume_answered_unavailable_keeps_the_seat(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory
) -> None:
    async with asyncio.timeout(45):
        (node,) = await chat_nodes(1, redis=redis_server, **SETTINGS)
        creator = ChatClient(node.url)
        await creator.connect()
        created = await creator.create_room(listed=True, topic="pause")
        await creator.close()
        members = [await join_member(f"m{i}", node.url, created.link) for i in range(3)]
        redis = redis_server.client()
        try:
            for m in members:
                await m.wait_for(lambda m: len(m.room.members) == 3, "everyone joined", 10)
            sender, mover, _ = members
            before = mover.member_id
            acked: dict[str, Sent] = {}
            errors: list[tuple[float, str, ChatError]] = []
            stream = asyncio.create_task(send_stream(sender, "s", 60, 10, acked, errors))
            await asyncio.sleep(1.0)
            # Redis holds every command for 3 s: the node's calls time out (2 s) and every
            # request is answered `unavailable` meanwhile, the resume among them.
            await redis.execute_command("CLIENT", "PAUSE", "3000", "ALL")
            await mover.client._force_reconnect()

            async def resume_refused() -> float:
                return sum(
                    [
                        await refusals_counted([node], event, "unavailable")
                        for event in ("room.challenge", "room.resume")
                    ]
                )

            await wait_until(resume_refused, "a resume answered unavailable", 10)
            await stream
            assert not errors, [(t, e.code) for _, t, e in errors][:8]
            for m in members:
                await m.wait_texts(acked, 15)
            back = mover.reconnects()
            assert back == [Reconnected(resumed=True, gap=False, member_id=before)], back
            assert_no_decrypt_failures(members)
            assert_all_acked_once_in_order(members, acked)
            for m in members:
                assert_contiguous(m)
                assert not m.left(), (m.name, m.left())
            # The refusals of the sends were retried by the client, not handed to the caller.
            assert await refusals_counted([node], "msg.send", "unavailable") >= 1
        finally:
            await redis.aclose()
            await close_all(members)
