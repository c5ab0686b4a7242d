"""The seams between a node and shared state. Each protocol states its guarantee.

Memory implementations (`chatserver/backends/memory/`) are the embedded single-node default; the
Redis ones (`chatserver/backends/redis/`) make a node one of many. The same contract tests run
against both. Optional capabilities a backend may have beyond its seam are small protocols in their
own section at the end: callers check those, never a backend's class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from chatserver.protocol.pushes import WireEvent as WireEvent  # part of the seams' contract
from rooms import Room


class Clock(Protocol):
    """Wall-clock seconds; injected so tests can move time."""

    def now(self) -> float: ...


@dataclass(frozen=True)
class Versioned:
    """A room as stored, with the version a compare-and-set must name, and the room's sequence
    number read in the same step: `room` is exactly the state after event `seq` (state changes and
    their events are committed together), so a joiner told `seq` misses no member and sees none
    twice."""

    room: Room
    version: int
    seq: int = 0


class RoomStore(Protocol):
    """Room state (the rooms core's `Room`), linearizable per room by compare-and-set on `version`,
    and committed in one atomic step with the sequenced events that announce the change (through the
    room's `RoomBus` log), so that every node sees state and events in one order.

    Entries live until deleted or until `due_at` has passed by a generous margin (a sweep ends rooms
    first; the store's own expiry is only a backstop so nothing outlives its room).
    """

    async def load(self, room_id: str) -> Versioned | None: ...

    async def load_held(self, room_id: str) -> Versioned | None:
        """The copy this node holds, if it holds one, else `load`. The copy may be behind: use it
        only with a write that names its version (a commit, or an append's `state_version`)."""
        ...

    async def commit(
        self,
        room_id: str,
        room: Room | None,
        expected_version: int | None,
        due_at: float,
        events: Sequence[WireEvent] = (),
        *,
        set_epoch: int | None = None,
        keep: bool = False,
    ) -> int | None:
        """If the stored version equals `expected_version` (None: only if absent), write `room`
        (None: delete it; `keep`: leave the state as it is) and append `events` to the room's log,
        in order and as one step: the bus numbers and delivers them as `RoomBus.append` would.
        Returns the room's sequence number after the events, or None (nothing done) when the
        version moved."""
        ...

    async def listed(self) -> list[Room]:
        """Every room listed in the public directory."""
        ...

    async def due(self, now: float) -> list[str]:
        """Ids of rooms whose next lifecycle deadline is at or before `now`."""
        ...


@dataclass(frozen=True)
class Quota:
    """A token bucket an append takes one token from in the same step (a message's per-member,
    per-room and slow-mode limits). `key` is opaque and scoped to the room; `name` says which
    limit refused (it is not stored)."""

    name: str
    key: str
    rate_per_s: float
    burst: int


@dataclass(frozen=True)
class EnvelopeGuard:
    """What `append` checks atomically for an envelope: its epoch is current and its chain index is
    new; with `state_version`, the room's state is still the version the sender was checked
    against; with `quotas`, each has a token (all are taken, or none)."""

    epoch: int
    sender_id: str
    key_id: int
    index: int
    digest: bytes
    state_version: int | None = None
    quotas: tuple[Quota, ...] = ()


@dataclass(frozen=True)
class Duplicate:
    """The very same envelope was accepted before (a retry after a lost ack)."""

    seq: int
    ts_ms: int


class AppendRefused(Exception):
    """`append` refused an envelope: `code` is "stale_epoch", "replay", "stale_state" (the room
    changed since the check: load it again and re-check) or "rate_limited" (`quota` names the
    first quota without a token, `wait_s` how long until every quota has one)."""

    def __init__(self, code: str, *, quota: str = "", wait_s: float = 0.0) -> None:
        super().__init__(code)
        self.code = code
        self.quota = quota
        self.wait_s = wait_s


class BusUnavailable(Exception):
    """The shared backend cannot be reached; the operation did nothing and may be retried."""


class BusEvents(Protocol):
    """What a bus hands its node: the named contract between a `RoomBus` and the gateway.

    A bus calls these from its delivery path (the Redis bus from its one pub/sub listener), one at
    a time; an implementation only queues frames and never waits on a client socket.
    """

    async def room_event(self, room_id: str, event: WireEvent) -> None:
        """One event of a room this node subscribed to: sequenced (with `seq`, in order, at most
        once) or volatile (typing, without `seq`)."""
        ...

    async def direct_event(self, room_id: str, member_id: str, event: WireEvent) -> None:
        """A directed event (a sealed key, a lobby push) for one member this node holds."""
        ...

    async def gap(self, room_id: str) -> None:
        """Events of the room were lost between the backend and this node and the recovery buffer
        no longer covers them: the node's members must resume (and learn of the gap)."""
        ...

    async def lost(self, room_id: str, last_seq: int) -> None:
        """The backend lost a held room's data (a restart without persistence); `last_seq` is the
        last sequence number this node delivered, so the node can restore the room."""
        ...

    async def resubscribed(self) -> None:
        """The node's subscriptions were restored after an interruption: directed events
        published meanwhile were not delivered, so the node hands its members their mailboxes."""
        ...


class RoomBus(Protocol):
    """Orders each room's events and carries them to every node holding the room.

    `append` assigns the next sequence number (previous + 1, no holes), keeps the event in a short
    recovery buffer (at most `buffer_max_events` events and `buffer_max_bytes` of encoded events,
    none older than `buffer_ttl_s`; the oldest go first) and delivers it at most once to every subscribed node, in sequence order; nodes fill gaps with `since`. With a
    `guard`, the append is refused atomically unless the envelope's epoch is the room's current one and
    its chain index is higher than any accepted for that (sender, key id); the same envelope again
    returns `Duplicate` (whatever the state or quotas). The guard's `state_version` and `quotas`
    are checked in the same step, after the duplicate check: a message is checked against a room a
    node may hold in memory, and appended only if that room is still current, with its rate limits
    taken without another round trip. `set_epoch` raises the room's current epoch (never lowers it).
    `send_direct` reaches one member's node at most once, unordered, and also keeps the event in that
    member's short mailbox for `mailbox` to hand over on resume; `send_direct_many` does the same
    for several members of one room in one backend call (the batched `key.send`).
    Every method raises `BusUnavailable` when the backend is unreachable.
    """

    def set_events(self, events: BusEvents) -> None:
        """Where this bus hands what it carries to its node (the gateway's fan-out)."""
        ...

    async def restore(self, room_id: str, seq: int, epoch: int) -> None:
        """Re-create a lost room's sequence and epoch (no-op if another node already did)."""
        ...

    async def append(
        self,
        room_id: str,
        event: WireEvent,
        *,
        guard: EnvelopeGuard | None = None,
        set_epoch: int | None = None,
    ) -> int | Duplicate: ...

    async def since(
        self,
        room_id: str,
        after_seq: int,
        *,
        max_events: int | None = None,
        max_bytes: int | None = None,
    ) -> list[WireEvent] | None:
        """Events with seq > after_seq in order, or None when the buffer no longer covers them
        (after_seq + 1 was dropped by age, count or bytes, or after_seq is ahead of the room).

        With `max_events` / `max_bytes`, only the oldest of them: a page of at most `max_events`
        events whose encoded sizes add up to at most `max_bytes`, except that a page always holds
        the first event, however large (one event is at most a frame)."""
        ...

    async def last_seq(self, room_id: str) -> int: ...

    async def send_direct(self, room_id: str, member_id: str, event: WireEvent) -> None: ...

    async def send_direct_many(
        self, room_id: str, deliveries: Sequence[tuple[str, WireEvent]]
    ) -> None:
        """`send_direct` for each (member id, event), in one backend round trip where it can:
        every member's node gets its event at most once, and every mailbox keeps it."""
        ...

    async def mailbox(self, room_id: str, member_id: str) -> list[WireEvent]:
        """Directed events for the member still in its mailbox, oldest first."""
        ...

    async def publish_volatile(self, room_id: str, event: WireEvent) -> None:
        """Deliver to the room's nodes at most once, without a sequence number or buffering."""
        ...

    async def subscribe(self, room_id: str) -> None:
        """Start delivering this room's events to this node (called for its first local member)."""
        ...

    async def unsubscribe(self, room_id: str) -> None: ...

    async def expire_buffers(self) -> None:
        """Forget buffered events and mailbox entries older than the buffer TTL, in idle rooms too."""
        ...

    async def drop(self, room_id: str) -> None:
        """Forget the room's sequence, buffer, chain indexes and mailboxes (the room ended)."""
        ...

    def healthy(self) -> bool:
        """False while the backend is unreachable or this node's subscriptions are not restored."""
        ...

    async def close(self) -> None: ...


class Presence(Protocol):
    """Which node holds each member's seat, with a deadline that lapses unless touched.

    A node touches the seats of its connected members periodically; a seat whose holder died or whose
    member went away lapses at its deadline. `claim_expired` hands each lapsed seat to exactly one
    caller cluster-wide, so exactly one node announces the departure.
    """

    async def touch(self, room_id: str, member_id: str, node_id: str, deadline: float) -> None: ...

    async def touch_many(self, seats: list[tuple[str, str]], node_id: str, deadline: float) -> None:
        """`touch` for many (room, member) seats at once: a node's heartbeat."""
        ...

    async def holder(self, room_id: str, member_id: str) -> str | None: ...

    async def remove(self, room_id: str, member_id: str) -> None: ...

    async def claim_expired(self, now: float, limit: int = 100) -> list[tuple[str, str]]: ...


class Denylist(Protocol):
    """Named sets of opaque strings shared by every node (revoked credentials, bans). Each entry
    expires at its own time, so a ban scoped to a room lasts no longer than the room."""

    async def add(self, name: str, item: str, expires_at: float) -> None: ...

    async def remove(self, name: str, item: str) -> None: ...

    async def contains(self, name: str, item: str, now: float) -> bool: ...

    async def items(self, name: str, now: float) -> list[str]:
        """Live entries, in the order they expire."""
        ...


class RateLimiter(Protocol):
    """Token buckets keyed by opaque strings, shared by every node; entries expire when full again."""

    async def hit(self, key: str, rate_per_s: float, burst: int, now: float) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        ...


# Optional backend capabilities ------------------------------------------------------------------
# What some backends can do beyond their seam. Code outside the composition root asks for one with
# `isinstance(backend, <capability>)` (hence `runtime_checkable`), never with a backend's class or
# `getattr`: a backend that gains the capability is then used without touching its callers.


@runtime_checkable
class NeedsStart(Protocol):
    """A backend with work to start before the node serves (the Redis bus: its pub/sub listener).
    `start` returns once the backend is ready, or after a bounded wait (`healthy` then says)."""

    async def start(self) -> None: ...


@runtime_checkable
class ReportsReaderStats(Protocol):
    """A bus that reads a shared backend and counts what it read (for metrics and tests)."""

    @property
    def messages_read(self) -> int:
        """Pub/sub messages this node decoded."""
        ...

    @property
    def reconnects(self) -> int:
        """Times the listener lost its backend and reconnected."""
        ...
