"""The seams' contract suite runs every test against memory and a real redis-server (free port, a key
prefix per test)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from chatserver.bus_memory import MemoryPresence, MemoryRoomBus
from chatserver.bus_redis import RedisRoomBus
from chatserver.denylist_memory import MemoryDenylist
from chatserver.denylist_redis import RedisDenylist
from chatserver.ports import Denylist, Presence, RateLimiter, RoomBus, RoomStore
from chatserver.presence_redis import RedisPresence
from chatserver.ratelimit import MemoryRateLimiter
from chatserver.ratelimit_redis import RedisRateLimiter
from chatserver.redis_conn import Keys, connect
from chatserver.store_memory import MemoryRoomStore
from chatserver.store_redis import RedisRoomStore
from tests.conftest import MovableClock

KEEP_S = 3600.0
TTL_S = 120.0
MAX_EVENTS = 50


@dataclass
class Backend:
    """One backend's seams; `bus_for` makes another node's bus on the same shared state."""

    name: str
    clock: MovableClock
    store: RoomStore
    presence: Presence
    limiter: RateLimiter
    denylist: Denylist
    make_bus: Any
    closers: list[Any]
    make_store: Any = None  # another node's store on the same shared state

    async def bus(self) -> RoomBus:
        bus = self.make_bus()
        if isinstance(bus, RedisRoomBus):
            await bus.start()
        self.closers.append(bus.close)
        return bus


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Backend]:
    clock = MovableClock()
    closers: list[Any] = []
    if request.param == "memory":
        shared_bus = MemoryRoomBus(clock, TTL_S, MAX_EVENTS)
        shared_store = MemoryRoomStore()
        yield Backend(
            "memory",
            clock,
            shared_store,
            MemoryPresence(),
            MemoryRateLimiter(),
            MemoryDenylist(),
            lambda: shared_bus,
            closers,
            lambda: shared_store,
        )
    else:
        url = redis_url
        redis = connect(url, cluster=False)
        keys = Keys(f"t{secrets.token_hex(4)}")
        yield Backend(
            "redis",
            clock,
            RedisRoomStore(redis, keys, KEEP_S),
            RedisPresence(redis, keys, KEEP_S),
            RedisRateLimiter(redis, keys),
            RedisDenylist(redis, keys),
            lambda: RedisRoomBus(
                connect(url, cluster=False),
                keys,
                clock,
                secrets.token_hex(4),
                TTL_S,
                MAX_EVENTS,
                KEEP_S,
            ),
            closers,
            lambda: RedisRoomStore(redis, keys, KEEP_S),
        )
        closers.append(redis.aclose)
    for close in reversed(closers):
        await close()
