"""Acceptance of Redis failures (issue 4), with real processes: a redis-server the test restarts or
whose pub/sub connections it kills, and chatserver nodes on it.

- Restart Redis during a steady stream: sends are refused with the retryable `unavailable` (never
  silently lost: the client sends the same envelope again), /readyz is 503 during the outage and
  200 again within seconds after, and
  messaging works again on every node without restarting any (the restarted Redis is empty: the
  nodes re-seed the rooms they hold).
- CLIENT KILL of the nodes' pub/sub connections: the listener comes back by itself and fills the
  gap from the room's stream, so no member misses a message.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp

from chatserver.client import ChatClient, ChatError, Sent
from tests.cluster.conftest import ChatNodesFactory
from tests.cluster.harness import ChatNode, RedisServer
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
    send_stream,
    subscribers,
    wait_until,
)


async def room_on_every_node(nodes: list[ChatNode], topic: str) -> tuple[str, list[Member]]:
    """A listed room with one member connected directly to each node (m0 on nodes[0], ...)."""
    creator = ChatClient(nodes[0].url)
    await creator.connect()
    try:
        created = await creator.create_room(listed=True, topic=topic)
    finally:
        await creator.close()
    members = [
        await join_member(f"m{i}", node.url, created.link, reconnect_timeout=30)
        for i, node in enumerate(nodes)
    ]
    for m in members:
        m.node = nodes[members.index(m)]
        await m.wait_for(lambda m: len(m.room.members) == len(nodes), "everyone joined", 10)
    return created.room_id, members


async def fresh_message_from_every_node(
    members: list[Member], tag: str, timeout: float, retry_for: float = 0.0
) -> list[tuple[str, str]]:
    """Each member sends one message (retrying `unavailable` for up to `retry_for` seconds);
    every member gets all of them. Returns the refusals that were retried (member, code)."""
    loop = asyncio.get_running_loop()
    sent: dict[str, Sent] = {}
    refused: list[tuple[str, str]] = []
    for m in members:
        text = f"{tag}-{m.name}"
        deadline = loop.time() + retry_for
        while True:
            try:
                sent[text] = await asyncio.wait_for(m.room.send(text), timeout)
                break
            except ChatError as exc:
                if exc.code != "unavailable" or loop.time() > deadline:
                    raise AssertionError(
                        f"{tag}: {m.name} on {m.node} cannot send: {exc} (refused before: "
                        f"{refused})"
                    ) from exc
                refused.append((m.name, exc.code))
                await asyncio.sleep(min(exc.retry_after or 0.2, 0.2))
    for m in members:
        await m.wait_texts(sent, timeout)
    return refused


async def test_redis_restart_during_stream(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory
) -> None:
    async with asyncio.timeout(60):
        nodes = await chat_nodes(3, redis=redis_server, **FAST)
        _, members = await room_on_every_node(nodes, "outage")
        loop = asyncio.get_running_loop()
        acked: dict[str, Sent] = {}
        errors: list[tuple[float, str, ChatError]] = []
        stop = asyncio.Event()
        try:
            stream = asyncio.create_task(
                send_stream(members[0], "s", 1000, 20, acked, errors, stop)
            )
            await asyncio.sleep(1.0)
            assert acked and not errors, errors

            await redis_server.stop()
            down_at = loop.time()
            # Every node reports not-ready (probed directly, not through a balancer) ...
            for node in nodes:
                await wait_until(
                    lambda node=node: _not(node.ready()), f"{node.name} /readyz 503", 3
                )
            # ... keeps its websockets, and refuses sends with the retryable `unavailable`, which
            # Room.send waits out (the same envelope goes again): the stream sees no refusal.
            await wait_until(
                lambda: refusals_counted(nodes, "msg.send", "unavailable"),
                "a refused send during the outage",
                3,
            )
            assert all(m.client.connected for m in members)
            await asyncio.sleep(max(0.0, down_at + 2.0 - loop.time()))
            await redis_server.start()

            for node in nodes:
                await wait_until(node.ready, f"{node.name} /readyz 200 after Redis is back", 5)
            await asyncio.sleep(1.0)  # the stream goes on a little on the recovered cluster
            settled = await refusals_counted(nodes, "msg.send", "unavailable")
            sent_before = len(acked)
            await asyncio.sleep(1.0)
            stop.set()
            await stream

            assert not errors, [(t, e.code, e.message) for _, t, e in errors][:8]
            # Every refusal is counted in the metrics of the node that gave it (members[0]'s);
            # none once every node is ready again, and the stream goes on.
            late = await refusals_counted(nodes, "msg.send", "unavailable") - settled
            assert not late, f"{late} sends still refused after recovery"
            assert len(acked) > sent_before
            assert all(m.client.connected for m in members)

            # Messaging works on every node without restarting any; nothing acked was lost.
            # (retrying `unavailable` for a few seconds, as an app would).
            refused = await fresh_message_from_every_node(members, "fresh", 10, retry_for=5)
            for m in members:
                await m.wait_texts(acked, 10)
            assert_no_decrypt_failures(members)
            assert_all_acked_once_in_order(members, acked)
            for m in members:
                assert_contiguous(m)
            assert all(n.running for n in nodes)
            # A node that says ready (for a second already) takes sends at the first attempt.
            assert not refused, f"sends refused after every /readyz was 200: {refused}"
        finally:
            stop.set()
            await close_all(members)


async def refusals_counted(nodes: list[ChatNode], event: str, result: str) -> float:
    """chatserver_requests_total for one event and result, summed over the nodes."""
    sample = re.compile(
        rf'^chatserver_requests_total{{event="{re.escape(event)}",result="{re.escape(result)}"}} (\S+)$',
        re.M,
    )
    total = 0.0
    async with aiohttp.ClientSession() as http:
        for node in nodes:
            async with http.get(node.url + "/metrics") as r:
                text = await r.text()
            total += sum(float(m.group(1)) for m in sample.finditer(text))
    return total


async def _not(probe: object) -> bool:
    return not await probe  # type: ignore[misc]


async def test_client_kill_of_pubsub_connections_loses_nothing(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory
) -> None:
    async with asyncio.timeout(45):
        nodes = await chat_nodes(3, redis=redis_server, **FAST)
        _, members = await room_on_every_node(nodes, "clientkill")
        redis = redis_server.client(decode_responses=True)
        acked: dict[str, Sent] = {}
        try:

            async def node_listeners() -> dict[str, list[str]]:
                """Each node's pub/sub connection ids (from CLIENT LIST)."""
                clients = await client_list(redis)
                return {
                    n.name: [
                        e["id"] for e in subscribers(entries_of(n, clients, redis_server.port))
                    ]
                    for n in nodes
                }

            listeners = await node_listeners()
            assert all(len(ids) == 1 for ids in listeners.values()), listeners
            reconnects_before = [
                await metric(n, "chatserver_backend_reconnects_total") for n in nodes
            ]
            errors: list[tuple[float, str, ChatError]] = []
            stream = asyncio.create_task(
                send_stream(members[0], "s", 150, 50, acked, errors, retry_unavailable=True)
            )
            # Round 1: every node's listener; round 2: only those of the nodes without the
            # sender, so messages keep being appended while they are not listening.
            for victims in (nodes, nodes[1:]):
                await asyncio.sleep(1.0)
                old = {i for n in victims for i in listeners[n.name]}
                killed = 0
                for client_id in old:
                    killed += int(await redis.execute_command("CLIENT", "KILL", "ID", client_id))
                assert killed == len(victims)

                async def back(old: set[str] = old) -> bool:
                    now = await node_listeners()
                    return all(len(ids) == 1 and not set(ids) & old for ids in now.values())

                await wait_until(back, "every node listening again after CLIENT KILL", 5)
                listeners = await node_listeners()
            await stream
            assert len(acked) == 150
            # A node refuses sends (retryable) only while its own listener is down.
            assert {e.code for _, _, e in errors} <= {"unavailable"}, errors

            # The gap each node had is filled from the stream: every member has every message.
            for m in members:
                await m.wait_texts(acked, 10)
            assert_no_decrypt_failures(members)
            assert_all_acked_once_in_order(members, acked)
            for m in members:
                assert_contiguous(m)
                assert not m.reconnects(), f"{m.name} had to reconnect: {m.reconnects()}"
            # The listener did not die silently: fresh messages flow on every node.
            await fresh_message_from_every_node(members, "fresh", 10)
            for node, before in zip(nodes, reconnects_before, strict=True):
                after = await metric(node, "chatserver_backend_reconnects_total")
                if before is not None and after is not None:
                    assert after - before >= (1 if node is nodes[0] else 2), (
                        node.name,
                        before,
                        after,
                    )
                assert await node.ready()
        finally:
            await redis.aclose()
            await close_all(members)
