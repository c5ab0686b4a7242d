"""The seams between a node and shared state. Each protocol states its guarantee.

Memory implementations (`*_memory.py`) are the embedded single-node default; the Redis ones make a node
one of many. The same contract tests run against both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rooms import Room

WireEvent = dict[str, Any]
RoomEventHandler = Callable[[str, WireEvent], Awaitable[None]]
DirectHandler = Callable[[str, str, WireEvent], Awaitable[None]]


class Clock(Protocol):
    """Wall-clock seconds; injected so tests can move time."""

    def now(self) -> float: ...


@dataclass(frozen=True)
class Versioned:
    """A room as stored, with the version a compare-and-set must name."""

    room: Room
    version: int


class RoomStore(Protocol):
    """Room state (the rooms core's `Room`), linearizable per room by compare-and-set on `version`.

    Entries live until deleted or until `due_at` has passed by a generous margin (a sweep ends rooms
    first; the store's own expiry is only a backstop so nothing outlives its room).
    """

    async def load(self, room_id: str) -> Versioned | None: ...

    async def save(self, room: Room, expected_version: int | None, due_at: float) -> bool:
        """Write if the stored version equals `expected_version` (None: only if absent)."""
        ...

    async def delete(self, room_id: str) -> None: ...

    async def listed(self) -> list[Room]:
        """Every room listed in the public directory."""
        ...

    async def due(self, now: float) -> list[str]:
        """Ids of rooms whose next lifecycle deadline is at or before `now`."""
        ...


class RoomBus(Protocol):
    """Orders each room's events and carries them to every node holding the room.

    `append` assigns the next sequence number (previous + 1, no holes), keeps the event in a short
    recovery buffer (at most `buffer_max_events` events, none older than `buffer_ttl_s`) and delivers it
    at most once to every subscribed node, in sequence order. `since` recovers what a subscriber missed.
    `send_direct` reaches one member's node, at most once and unordered.
    """

    def set_handlers(self, on_room: RoomEventHandler, on_direct: DirectHandler) -> None: ...

    async def append(self, room_id: str, event: WireEvent) -> int: ...

    async def since(self, room_id: str, after_seq: int) -> list[WireEvent] | None:
        """Events with seq > after_seq in order, or None when the buffer no longer covers them."""
        ...

    async def last_seq(self, room_id: str) -> int: ...

    async def send_direct(self, room_id: str, member_id: str, event: WireEvent) -> None: ...

    async def publish_volatile(self, room_id: str, event: WireEvent) -> None:
        """Deliver to the room's nodes at most once, without a sequence number or buffering."""
        ...

    async def subscribe(self, room_id: str) -> None:
        """Start delivering this room's events to this node (called for its first local member)."""
        ...

    async def unsubscribe(self, room_id: str) -> None: ...

    async def drop(self, room_id: str) -> None:
        """Forget the room's sequence and buffer (the room ended)."""
        ...

    async def close(self) -> None: ...


Claim = Literal["new", "stale"] | tuple[int, int]


class ReplayGuard(Protocol):
    """Chain indexes per (room, sender, key id) only ever increase, cluster-wide.

    `claim` returns "new" and records the index when it is higher than any accepted, "stale" when it is
    not, or `(seq, ts_ms)` of the earlier acceptance when the very same envelope (by digest) is retried,
    so a retry after a lost ack is answered idempotently. Entries expire with the room.
    """

    async def claim(
        self, room_id: str, sender_id: str, key_id: int, index: int, digest: bytes
    ) -> Claim: ...

    async def confirm(
        self, room_id: str, sender_id: str, key_id: int, digest: bytes, seq: int, ts_ms: int
    ) -> None: ...

    async def drop(self, room_id: str) -> None: ...


class RateLimiter(Protocol):
    """Token buckets keyed by opaque strings, shared by every node; entries expire when full again."""

    async def hit(self, key: str, rate_per_s: float, burst: int, now: float) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        ...
