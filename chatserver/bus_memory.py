"""In-process RoomBus: sequence numbers, the recovery buffer and local delivery on one node."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from chatserver.ports import Clock, DirectHandler, RoomEventHandler, WireEvent


@dataclass
class _RoomLog:
    seq: int = 0
    # (seq, appended_at, event), oldest first
    buffer: deque[tuple[int, float, WireEvent]] = field(default_factory=deque)


class MemoryRoomBus:
    """Every room is "subscribed" on the only node; delivery is a direct await of the handler."""

    def __init__(self, clock: Clock, buffer_ttl_s: float, buffer_max_events: int) -> None:
        self._clock = clock
        self._ttl = buffer_ttl_s
        self._max = buffer_max_events
        self._logs: dict[str, _RoomLog] = {}
        self._subscribed: set[str] = set()
        self._on_room: RoomEventHandler | None = None
        self._on_direct: DirectHandler | None = None

    def set_handlers(self, on_room: RoomEventHandler, on_direct: DirectHandler) -> None:
        self._on_room, self._on_direct = on_room, on_direct

    async def append(self, room_id: str, event: WireEvent) -> int:
        log = self._logs.setdefault(room_id, _RoomLog())
        log.seq += 1
        event["seq"] = log.seq
        now = self._clock.now()
        log.buffer.append((log.seq, now, event))
        self._trim(log, now)
        if room_id in self._subscribed and self._on_room is not None:
            await self._on_room(room_id, event)
        return log.seq

    async def since(self, room_id: str, after_seq: int) -> list[WireEvent] | None:
        log = self._logs.get(room_id)
        if log is None:
            return None if after_seq > 0 else []
        self._trim(log, self._clock.now())
        if after_seq >= log.seq:
            return [] if after_seq == log.seq else None
        oldest = log.buffer[0][0] if log.buffer else log.seq + 1
        if after_seq + 1 < oldest:
            return None
        return [event for seq, _, event in log.buffer if seq > after_seq]

    async def last_seq(self, room_id: str) -> int:
        log = self._logs.get(room_id)
        return log.seq if log else 0

    async def send_direct(self, room_id: str, member_id: str, event: WireEvent) -> None:
        if self._on_direct is not None:
            await self._on_direct(room_id, member_id, event)

    async def publish_volatile(self, room_id: str, event: WireEvent) -> None:
        if room_id in self._subscribed and self._on_room is not None:
            await self._on_room(room_id, event)

    async def subscribe(self, room_id: str) -> None:
        self._subscribed.add(room_id)

    async def unsubscribe(self, room_id: str) -> None:
        self._subscribed.discard(room_id)

    async def drop(self, room_id: str) -> None:
        self._logs.pop(room_id, None)
        self._subscribed.discard(room_id)

    async def close(self) -> None:
        self._logs.clear()

    def _trim(self, log: _RoomLog, now: float) -> None:
        while log.buffer and (len(log.buffer) > self._max or now - log.buffer[0][1] > self._ttl):
            log.buffer.popleft()
