"""The seams' contract suite runs every test against memory and a real redis-server (free port, a key
prefix per test)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from chatserver.backends.memory.bus import MemoryRoomBus
from chatserver.backends.memory.denylist import MemoryDenylist
from chatserver.backends.memory.presence import MemoryPresence
from chatserver.backends.memory.ratelimit import MemoryRateLimiter
from chatserver.backends.memory.store import MemoryRoomStore
from chatserver.backends.redis.bus import RedisRoomBus
from chatserver.backends.redis.conn import Keys, connect
from chatserver.backends.redis.denylist import RedisDenylist
from chatserver.backends.redis.presence import RedisPresence
from chatserver.backends.redis.ratelimit import RedisRateLimiter
from chatserver.backends.redis.store import RedisRoomStore
from chatserver.ports import Denylist, NeedsStart, Presence, RateLimiter, RoomBus, RoomStore
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
        if isinstance(bus, NeedsStart):
            await bus.start()
        self.closers.append(bus.close)
        return bus


def store_bus(redis: Any, keys: Keys, clock: MovableClock) -> RedisRoomBus:
    """The bus a store commits through (not started: a commit needs no listener)."""
    return RedisRoomBus(redis, keys, clock, secrets.token_hex(4), TTL_S, MAX_EVENTS, KEEP_S)


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Backend]:
    clock = MovableClock()
    closers: list[Any] = []
    if request.param == "memory":
        shared_bus = MemoryRoomBus(clock, TTL_S, MAX_EVENTS)
        shared_store = MemoryRoomStore(shared_bus)
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
            RedisRoomStore(redis, keys, KEEP_S, store_bus(redis, keys, clock)),
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
            lambda: RedisRoomStore(redis, keys, KEEP_S, store_bus(redis, keys, clock)),
        )
        closers.append(redis.aclose)
    for close in reversed(closers):
        await close()
