"""Fixtures for multi-process tests: redis-server, a 3-master Redis Cluster, chatserver nodes
and nginx, all real processes on free ports, torn down even when the test fails.

    async def test_x(redis_server, chat_nodes, nginx):
        nodes = await chat_nodes(3, redis=redis_server, ping_interval_s=5)
        lb = await nginx(nodes)
        ...  # connect Socket.IO clients to lb.url; nodes[0].kill(); redis_server.restart() ...
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest

from tests.cluster.harness import ChatNode, Nginx, RedisCluster, RedisServer, kill_leftovers

ChatNodesFactory = Callable[..., Awaitable[list[ChatNode]]]
NginxFactory = Callable[..., Awaitable[Nginx]]


@pytest.fixture(scope="session", autouse=True)
def _kill_leftover_processes() -> Iterator[None]:
    """Whatever a test left running is SIGKILLed at the end of the session (also at exit)."""
    yield
    left = kill_leftovers()
    if left:
        print(f"\ncluster harness killed leftover processes: {', '.join(left)}", file=sys.stderr)


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    """A fresh redis-server for this test (so it may stop, kill or restart it)."""
    server = RedisServer()
    try:
        yield await server.start()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def _redis_cluster_session() -> Iterator[RedisCluster]:
    # Started once (a few seconds) in its own short-lived loop: it holds no loop-bound objects,
    # so function-scoped tests on their own loops can use it.
    cluster = RedisCluster()
    try:
        asyncio.run(cluster.start())
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
async def redis_cluster(_redis_cluster_session: RedisCluster) -> RedisCluster:
    """A 3-master Redis Cluster shared by the session, flushed before each test.

    Tests must not kill or restart its nodes (start their own RedisCluster() for that).
    """
    await _redis_cluster_session.wait_ok()
    await _redis_cluster_session.flush()
    return _redis_cluster_session


def _redis_url(redis: RedisServer | RedisCluster | str | None) -> str | None:
    if redis is None or isinstance(redis, str):
        return redis
    return redis.url


@pytest.fixture
async def chat_nodes() -> AsyncIterator[ChatNodesFactory]:
    """`await chat_nodes(n=1, *, redis=None, wait_ready=True, **settings) -> list[ChatNode]`

    Starts n nodes concurrently and waits for /healthz (and /readyz). `redis` is a RedisServer,
    RedisCluster, URL or None (embedded mode); `settings` are chatserver Settings fields, e.g.
    `shutdown_grace_s=2`. May be called several times; every node is stopped at teardown.
    """
    nodes: list[ChatNode] = []

    async def factory(
        n: int = 1,
        *,
        redis: RedisServer | RedisCluster | str | None = None,
        wait_ready: bool = True,
        **settings: Any,
    ) -> list[ChatNode]:
        batch = [ChatNode(_redis_url(redis), settings=settings) for _ in range(n)]
        nodes.extend(batch)
        await asyncio.gather(*(node.start(wait_ready=wait_ready) for node in batch))
        return batch

    try:
        yield factory
    finally:

        async def stop(node: ChatNode) -> None:
            if node.running:
                with contextlib.suppress(Exception):
                    await node.stop(timeout=3)

        await asyncio.gather(*(stop(node) for node in nodes))
        for node in nodes:
            node.cleanup()


@pytest.fixture
async def nginx() -> AsyncIterator[NginxFactory]:
    """`await nginx(nodes) -> Nginx`: nginx rendered from deploy/nginx.conf in front of `nodes`
    (ChatNode objects or ports), listening on a free port; `.url` is what clients connect to."""
    started: list[Nginx] = []

    async def factory(nodes: Sequence[ChatNode | int], port: int | None = None) -> Nginx:
        lb = Nginx(nodes, port=port)
        started.append(lb)
        return await lb.start()

    try:
        yield factory
    finally:
        for lb in started:
            if lb.process.running:
                with contextlib.suppress(Exception):
                    await lb.stop(timeout=3)
            lb.cleanup()
