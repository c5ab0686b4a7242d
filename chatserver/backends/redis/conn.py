"""Connecting to Redis (one server or a cluster), key names, the Lua scripts, and mapping outages to
BusUnavailable.

Every key of a room carries the room id as a hash tag (`{room_id}`), so one room's keys, scripts and
sharded channel live in one cluster slot. Requires Redis 7 (sharded pub/sub, SPUBLISH from scripts).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.cluster import RedisCluster
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from chatserver.ports import BusUnavailable

log = logging.getLogger("chatserver.redis")

# redis-py types replies as unions over `decode_responses`; ours is always off (bytes), so the seams
# treat the client as untyped and convert at the boundary.
AnyRedis = Any


# Commands a node has in flight on one Redis (on a cluster: on each shard). A join storm or a
# room's key shares make hundreds of handlers call Redis at once; beyond this many they wait their
# turn for a connection (back-pressure) instead of failing, and a command that waits longer than
# the queue timeout fails as an outage would (`unavailable`, retryable).
MAX_CONNECTIONS = 64
QUEUE_TIMEOUT_S = 5.0


def connect(
    url: str,
    cluster: bool,
    *,
    max_connections: int = MAX_CONNECTIONS,
    queue_timeout_s: float = QUEUE_TIMEOUT_S,
) -> AnyRedis:
    """A client with short timeouts: an outage must surface as a retryable error, not a hang."""
    options: dict[str, Any] = {
        "socket_connect_timeout": 1.0,
        "socket_timeout": 2.0,
        # After a Redis restart every pooled connection is dead: retry enough to replace them.
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), 3),
        "health_check_interval": 0,
    }
    if cluster:
        # redis-py's cluster client has no waiting pool: past `max_connections` per shard it
        # raises at once, so its bound is set well above what one node's handlers reach.
        return RedisCluster.from_url(url, max_connections=max_connections * 4, **options)
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=queue_timeout_s, **options
    )
    return aioredis.Redis.from_pool(pool)


def lua_script(name: str) -> str:
    """The text of `lua/<name>.lua`, shipped as package data (each file names its KEYS and ARGV)."""
    return (files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


class Keys:
    """Key and channel names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def room(self, room_id: str, part: str) -> str:
        return f"{self.prefix}:{{{room_id}}}:{part}"

    def room_channel(self, room_id: str) -> str:
        return self.room(room_id, "ch")

    def mailbox(self, room_id: str, member_id: str) -> str:
        return self.room(room_id, f"mbox:{member_id}")

    def node_channel(self, node_id: str) -> str:
        return f"{self.prefix}:node:{node_id}"

    def global_(self, name: str) -> str:
        return f"{self.prefix}:{name}"


@asynccontextmanager
async def backend_errors() -> AsyncIterator[None]:
    """Redis being unreachable (or a cluster slot moving) becomes a retryable BusUnavailable."""
    try:
        yield
    except (RedisError, OSError) as exc:
        log.warning("backend call failed", extra={"error": type(exc).__name__})
        raise BusUnavailable(type(exc).__name__) from exc
