"""The multi-process harness itself works: redis-server, a Redis Cluster, chatserver nodes
(embedded mode, no Redis yet) behind nginx rendered from deploy/nginx.conf."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import socketio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.cluster.conftest import ChatNodesFactory, NginxFactory
from tests.cluster.harness import (
    DEPLOY,
    HarnessError,
    Nginx,
    RedisCluster,
    RedisServer,
    load_renderer,
    settings_env,
)


@contextlib.asynccontextmanager
async def sio_client(url: str, **options: Any) -> AsyncIterator[socketio.AsyncClient]:
    client = socketio.AsyncClient(serializer="msgpack", **options)
    try:
        await client.connect(url, transports=["websocket"], wait_timeout=5)
        yield client
    finally:
        if client.connected:
            await client.disconnect()
        with contextlib.suppress(Exception):
            await client.shutdown()


async def room_list(client: socketio.AsyncClient) -> dict[str, Any]:
    ack = await client.call("room.list", {}, timeout=5)
    assert isinstance(ack, dict), ack
    return ack


async def get_statuses(url: str, n: int) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for _ in range(n):
            async with session.get(url) as r:
                statuses.append(r.status)
    return statuses


async def test_redis_server_answers_dies_and_restarts_empty(redis_server: RedisServer) -> None:
    client = redis_server.client(retry=Retry(NoBackoff(), retries=0))
    try:
        assert await client.ping()
        await client.set("k", "v")
        assert await client.get("k") == b"v"

        await redis_server.kill()
        assert not redis_server.running
        with pytest.raises(RedisConnectionError):
            await client.ping()

        port, pid = redis_server.port, redis_server.pid
        await redis_server.restart()
        assert redis_server.port == port and redis_server.pid != pid
        assert await client.ping()  # the client reconnects by itself
        assert await client.get("k") is None  # no persistence: a restart starts empty
    finally:
        await client.aclose()
    assert await redis_server.stop() == 0


async def test_redis_cluster_forms_and_serves_keys(redis_cluster: RedisCluster) -> None:
    for server in redis_cluster.servers:
        info = await redis_cluster.cluster_info(server)
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_size"]) == 3  # three masters, each with slots
    client = redis_cluster.client()
    try:
        # Keys in different slots, so different masters: the client follows the slot map.
        keys = {f"{{room{i}}}:seq": str(i) for i in range(12)}
        for key, value in keys.items():
            await client.set(key, value)
        for key, value in keys.items():
            assert await client.get(key) == value.encode()
        owners = {getattr(client.get_node_from_key(key), "port", None) for key in keys}
        assert len(owners) > 1
    finally:
        await client.aclose()


def test_deploy_nginx_conf_is_the_template_and_generated_files_are_current() -> None:
    renderer = load_renderer()
    template = (DEPLOY / "nginx.conf").read_text()
    assert renderer.render() == template  # rendering with no changes is the identity
    for path, text in renderer.generated_files().items():
        assert path.read_text() == text, (
            f"{path.name} is stale: python3 deploy/render_nginx_conf.py --write-generated"
        )
    directives = [line.split("#", 1)[0].strip() for line in template.splitlines()]
    assert not any(d.startswith(("ip_hash", "sticky", "hash ")) for d in directives)
    assert "access_log off;" in directives and "server_tokens off;" in directives
    # The config the tests run passes `nginx -t` (as the production file does on a host).
    lb = Nginx([8081, 8082, 8083])
    try:
        checked = lb.check_config()
    finally:
        lb.cleanup()
    assert checked.returncode == 0, checked.stderr


def test_unknown_setting_is_refused() -> None:
    assert settings_env({"ping_interval_s": 5, "CHATSERVER_LOG_LEVEL": "debug"}) == {
        "CHATSERVER_PING_INTERVAL_S": "5",
        "CHATSERVER_LOG_LEVEL": "debug",
    }
    with pytest.raises(HarnessError, match="unknown chatserver setting"):
        settings_env({"ping_intervall_s": 5})


async def test_nginx_spreads_websockets_over_nodes(
    chat_nodes: ChatNodesFactory, nginx: NginxFactory
) -> None:
    nodes = await chat_nodes(3)
    lb = await nginx(nodes)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(sio_client(lb.url, reconnection=False))
            for _ in range(6)
        ]
        for client in clients:
            ack = await room_list(client)
            assert ack["ok"] is True and isinstance(ack["rooms"], list)
        # least_conn puts the 6 websockets 2 per node; each shows up as a TCP connection there.
        per_node = [node.connections for node in nodes]
        assert all(count >= 1 for count in per_node), per_node
        assert sum(per_node) >= 6, per_node


async def test_nginx_fails_over_http_when_nodes_die(
    chat_nodes: ChatNodesFactory, nginx: NginxFactory
) -> None:
    nodes = await chat_nodes(3)
    lb = await nginx(nodes)
    assert await get_statuses(lb.url + "/healthz", 30) == [200] * 30
    # Sequential requests rotate over the nodes: their idle upstream keepalives stay open.
    assert sum(1 for node in nodes if node.connections > 0) >= 2
    # /readyz is per node and not exposed through the balancer.
    assert await get_statuses(lb.url + "/readyz", 1) == [404]

    await nodes[0].kill()
    assert await get_statuses(lb.url + "/healthz", 30) == [200] * 30
    await nodes[1].kill()
    assert await get_statuses(lb.url + "/healthz", 30) == [200] * 30
    await nodes[2].kill()
    assert await get_statuses(lb.url + "/healthz", 3) == [502] * 3


async def test_websocket_client_reconnects_to_another_node_through_nginx(
    chat_nodes: ChatNodesFactory, nginx: NginxFactory
) -> None:
    nodes = await chat_nodes(3)
    lb = await nginx(nodes)
    connects: asyncio.Queue[None] = asyncio.Queue()
    async with sio_client(
        lb.url, reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.5
    ) as client:
        client.on("connect", lambda: connects.put_nowait(None))
        assert (await room_list(client))["ok"] is True
        home = [node for node in nodes if node.connections > 0]
        assert len(home) == 1, [node.connections for node in nodes]

        await home[0].kill()
        await asyncio.wait_for(connects.get(), 10)  # reconnected, through nginx
        assert (await room_list(client))["ok"] is True
        now = [node for node in nodes if node.connections > 0]
        assert len(now) == 1 and now[0] is not home[0]


async def test_chat_node_drains_on_sigterm_and_keeps_its_log(chat_nodes: ChatNodesFactory) -> None:
    (node,) = await chat_nodes(1, shutdown_grace_s=1, log_level="info")
    async with sio_client(node.url, reconnection=False) as client:
        assert (await room_list(client))["ok"] is True
        assert await node.stop() == 0
        for _ in range(50):
            if not client.connected:
                break
            await asyncio.sleep(0.05)
        assert not client.connected
    assert "node started" in node.logs()


async def test_aioredis_is_the_client_the_harness_hands_out(redis_server: RedisServer) -> None:
    client = redis_server.client()
    try:
        assert isinstance(client, aioredis.Redis)
        assert (await client.info("persistence"))["aof_enabled"] == 0
        assert (await client.config_get("save"))["save"] == ""
    finally:
        await client.aclose()
