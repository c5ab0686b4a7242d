"""Two nodes on one redis-server take hundreds of joins into one room at once (issue 17): every
member ends with the same member list, and every member saw the same event at every sequence
number. A node that saved the room and appended the `member.joined` as two steps let another
node's join land in between, so a joiner was told a `seq` that did not match its snapshot and
never learned of a member.

The nodes get a small Redis pool on purpose: the storm must queue for connections, never fail
(no `unavailable` and no `rate_limited` answer to the protocol's own traffic)."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict

import aiohttp

from chatserver.client import ChatClient, MemberJoined, MemberLeft
from tests.cluster.conftest import ChatNodesFactory
from tests.cluster.harness import RedisServer
from tests.cluster.scaleout_helpers import FAST, Member, close_all

JOINERS = 200
AT_ONCE = 40  # joins in flight together, across both nodes
MANY = {
    **FAST,
    "join_rate_per_s": 1000,
    "join_burst": 1000,
    "default_capacity": 500,
    "redis_max_connections": 16,
}
REQUESTS = re.compile(
    r'^chatserver_requests_total\{event="([^"]+)",result="([^"]+)"\} (\S+)$', re.M
)


async def test_concurrent_joins_on_two_nodes_give_every_member_one_list_and_one_order(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory
) -> None:
    a, b = await chat_nodes(2, redis=redis_server, **MANY)
    urls = [a.url, b.url]
    members: list[Member] = []
    gate = asyncio.Semaphore(AT_ONCE)

    async def join(i: int) -> Member:
        async with gate:
            client = ChatClient(urls[i % 2])
            await client.connect()
            room = await client.join(link)  # an assigned pseudonym: unique by construction
            return Member(f"j{i}", client, room).start()

    creator = ChatClient(a.url)
    await creator.connect()
    async with asyncio.timeout(150):
        link = (await creator.create_room(listed=True, topic="joins")).link
        members += await asyncio.gather(*(join(i) for i in range(JOINERS)))
        try:
            everyone = {m.member_id for m in members}
            assert len(everyone) == JOINERS
            for m in members:
                # Members first, then every event the room queued for the recorder taken.
                await m.wait_for(
                    lambda m: set(m.room.members) == everyone and m.room._queue.empty(),
                    "every member in its list",
                    60,
                )
            # One order: whoever saw the event at a sequence number saw the same event there.
            seen: dict[int, set[tuple[str, str]]] = defaultdict(set)
            for m in members:
                for event in m.ordered():
                    if isinstance(event, MemberJoined | MemberLeft):
                        seen[event.seq].add((type(event).__name__, event.member_id))
            assert all(len(events) == 1 for events in seen.values()), {
                seq: events for seq, events in seen.items() if len(events) > 1
            }
            joined = [next(iter(seen[seq]))[1] for seq in sorted(seen)]
            # Each join once; only the first joiner's had nobody to tell.
            assert len(joined) == len(set(joined)) == JOINERS - 1
            for m in members:
                # Each member saw, in sequence order, exactly the joins after its own.
                mine = [e.member_id for e in m.ordered() if isinstance(e, MemberJoined)]
                after = joined.index(m.member_id) + 1 if m.member_id in joined else 0
                assert mine == joined[after:], m.name
            refused = {}
            async with aiohttp.ClientSession() as http:
                for node in (a, b):
                    async with http.get(node.url + "/metrics") as r:
                        for event, result, count in REQUESTS.findall(await r.text()):
                            if result in ("unavailable", "rate_limited") and float(count):
                                refused[(node.port, event, result)] = float(count)
            assert not refused, refused
            for node in (a, b):
                assert "backend call failed" not in node.process.log_text()
        finally:
            await creator.close()
            await close_all(members)
