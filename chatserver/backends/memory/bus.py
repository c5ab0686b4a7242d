"""In-process RoomBus: sequence numbers, recovery buffer, guards and mailboxes on one node."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import dropwhile

import msgpack

from chatserver.backends.memory.ratelimit import MemoryRateLimiter
from chatserver.ports import (
    AppendRefused,
    BusEvents,
    Clock,
    Duplicate,
    EnvelopeGuard,
    WireEvent,
)

MAILBOX_MAX = 256

# A buffered event: (seq, appended_at, encoded size, event).
_Entry = tuple[int, float, int, WireEvent]


def encoded_size(event: WireEvent) -> int:
    """The event's size as the Redis bus stores it and a reply carries it: msgpack-encoded."""
    return len(msgpack.packb(event, use_bin_type=True))


@dataclass
class _Chain:
    index: int
    digest: bytes
    seq: int
    ts_ms: int


@dataclass
class _RoomLog:
    seq: int = 0
    epoch: int = 0
    # oldest first, with the sum of their encoded sizes
    buffer: deque[_Entry] = field(default_factory=deque)
    buffered_bytes: int = 0
    chains: dict[tuple[str, int], _Chain] = field(default_factory=dict)
    mailboxes: dict[str, deque[tuple[float, WireEvent]]] = field(default_factory=dict)


class MemoryRoomBus:
    """Every room is "subscribed" on the only node; delivery is a direct await of the handler."""

    def __init__(
        self,
        clock: Clock,
        buffer_ttl_s: float,
        buffer_max_events: int,
        *,
        buffer_max_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self._clock = clock
        self._ttl = buffer_ttl_s
        self._max = buffer_max_events
        self._max_bytes = buffer_max_bytes
        self._logs: dict[str, _RoomLog] = {}
        self._subscribed: set[str] = set()
        self._events: BusEvents | None = None
        self._state_version: Callable[[str], int | None] = lambda room_id: None
        self._quotas = MemoryRateLimiter()

    def check_state_with(self, version: Callable[[str], int | None]) -> None:
        """The store whose versions a guard's `state_version` names (MemoryRoomStore sets it)."""
        self._state_version = version

    def set_events(self, events: BusEvents) -> None:
        # Memory is lost only with the process, and the rooms with it: `lost`, `gap` and
        # `resubscribed` never run.
        self._events = events

    async def restore(self, room_id: str, seq: int, epoch: int) -> None:
        log = self._logs.setdefault(room_id, _RoomLog())
        log.seq, log.epoch = max(log.seq, seq), max(log.epoch, epoch)

    async def append(
        self,
        room_id: str,
        event: WireEvent,
        *,
        guard: EnvelopeGuard | None = None,
        set_epoch: int | None = None,
    ) -> int | Duplicate:
        log = self._logs.setdefault(room_id, _RoomLog())
        chain_key = (guard.sender_id, guard.key_id) if guard else None
        if guard is not None and chain_key is not None:
            if log.epoch and guard.epoch != log.epoch:
                raise AppendRefused("stale_epoch")
            last = log.chains.get(chain_key)
            if last is not None and guard.index <= last.index:
                if last.digest == guard.digest:
                    return Duplicate(last.seq, last.ts_ms)
                raise AppendRefused("replay")
            if (
                guard.state_version is not None
                and self._state_version(room_id) != guard.state_version
            ):
                raise AppendRefused("stale_state")
            if guard.quotas:
                refused, wait = self._quotas.take_all(room_id, guard.quotas, self._clock.now())
                if refused is not None:
                    raise AppendRefused("rate_limited", quota=refused, wait_s=wait)
        seq = self.sequence(room_id, event, set_epoch)
        if guard is not None and chain_key is not None:
            log.chains[chain_key] = _Chain(guard.index, guard.digest, seq, int(event["ts"]))
        await self.deliver(room_id, event)
        return seq

    def sequence(self, room_id: str, event: WireEvent, set_epoch: int | None = None) -> int:
        """Number and buffer one event without yielding (the store's commit runs this beside its
        state write, so the two are one step); `deliver` then hands it to the node."""
        log = self._logs.setdefault(room_id, _RoomLog())
        log.seq += 1
        event["seq"] = log.seq
        if set_epoch is not None:
            log.epoch = max(log.epoch, set_epoch)
        now = self._clock.now()
        size = encoded_size(event)
        log.buffer.append((log.seq, now, size, event))
        log.buffered_bytes += size
        self._trim(log, now)
        return log.seq

    async def deliver(self, room_id: str, event: WireEvent) -> None:
        """Hand a sequenced event to the node's members, if it holds the room."""
        if room_id in self._subscribed and self._events is not None:
            await self._events.room_event(room_id, event)

    def seq_now(self, room_id: str) -> int:
        """`last_seq` without yielding."""
        log = self._logs.get(room_id)
        return log.seq if log else 0

    async def since(
        self,
        room_id: str,
        after_seq: int,
        *,
        max_events: int | None = None,
        max_bytes: int | None = None,
    ) -> list[WireEvent] | None:
        log = self._logs.get(room_id)
        if log is None:
            return None if after_seq > 0 else []
        self._trim(log, self._clock.now())
        if after_seq >= log.seq:
            return [] if after_seq == log.seq else None
        oldest = log.buffer[0][0] if log.buffer else log.seq + 1
        if after_seq + 1 < oldest:
            return None
        wanted = dropwhile(lambda entry: entry[0] <= after_seq, log.buffer)
        return _page(wanted, max_events, max_bytes)

    async def last_seq(self, room_id: str) -> int:
        return self.seq_now(room_id)

    async def send_direct(self, room_id: str, member_id: str, event: WireEvent) -> None:
        await self.send_direct_many(room_id, [(member_id, event)])

    async def send_direct_many(
        self, room_id: str, deliveries: Sequence[tuple[str, WireEvent]]
    ) -> None:
        log = self._logs.setdefault(room_id, _RoomLog())
        now = self._clock.now()
        for member_id, event in deliveries:
            box = log.mailboxes.setdefault(member_id, deque(maxlen=MAILBOX_MAX))
            box.append((now, event))
        if self._events is not None:
            for member_id, event in deliveries:
                await self._events.direct_event(room_id, member_id, event)

    async def mailbox(self, room_id: str, member_id: str) -> list[WireEvent]:
        log = self._logs.get(room_id)
        box = log.mailboxes.get(member_id) if log else None
        if not box:
            return []
        oldest = self._clock.now() - self._ttl
        return [event for at, event in box if at >= oldest]

    async def publish_volatile(self, room_id: str, event: WireEvent) -> None:
        if room_id in self._subscribed and self._events is not None:
            await self._events.room_event(room_id, event)

    async def subscribe(self, room_id: str) -> None:
        self._subscribed.add(room_id)

    async def unsubscribe(self, room_id: str) -> None:
        self._subscribed.discard(room_id)

    async def expire_buffers(self) -> None:
        now = self._clock.now()
        oldest = now - self._ttl
        for log in self._logs.values():
            self._trim(log, now)
            for member_id, box in list(log.mailboxes.items()):
                while box and box[0][0] < oldest:
                    box.popleft()
                if not box:
                    del log.mailboxes[member_id]

    async def drop(self, room_id: str) -> None:
        self._logs.pop(room_id, None)
        self._subscribed.discard(room_id)

    def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        self._logs.clear()

    def _trim(self, log: _RoomLog, now: float) -> None:
        while log.buffer and (
            len(log.buffer) > self._max
            or log.buffered_bytes > self._max_bytes
            or now - log.buffer[0][1] > self._ttl
        ):
            log.buffered_bytes -= log.buffer.popleft()[2]


def _page(
    entries: Iterable[_Entry], max_events: int | None, max_bytes: int | None
) -> list[WireEvent]:
    """The first entries' events, within the bounds; the first one always (see `RoomBus.since`)."""
    page: list[WireEvent] = []
    total = 0
    for _, _, size, event in entries:
        if max_events is not None and len(page) >= max_events:
            break
        if max_bytes is not None and page and total + size > max_bytes:
            break
        page.append(event)
        total += size
    return page
