"""Applies rooms-core commands to stored rooms and publishes the resulting events in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from chatserver.ports import Clock, Presence, RoomBus, RoomStore, Versioned
from chatserver.protocol import ErrorCode, ProtocolError
from chatserver.protocol.core_events import event_to_wire
from rooms import Command, Decision, Refusal, Room, RoomPolicy, Tick, decide
from rooms.errors import RefusalCode

log = logging.getLogger("chatserver.service")

CAS_RETRIES = 8


class RoomService:
    """The only writer of room state: load, decide, compare-and-set, then append the events."""

    def __init__(
        self,
        store: RoomStore,
        bus: RoomBus,
        presence: Presence,
        policy: RoomPolicy,
        clock: Clock,
    ) -> None:
        self.store = store
        self.bus = bus
        self.presence = presence
        self.policy = policy
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def _locked(self, room_id: str) -> AsyncIterator[None]:
        # Serialises one room's changes on this node so its events are appended in decision order.
        lock = self._locks.setdefault(room_id, asyncio.Lock())
        async with lock:
            yield
        if not lock.locked() and not lock._waiters:
            self._locks.pop(room_id, None)

    async def apply(self, room_id: str, command: Command) -> tuple[Decision, int]:
        """Decide and commit `command`; returns the decision and the room's sequence number after
        it (the state in the decision is exactly the state after that number)."""
        async with self._locked(room_id):
            for _ in range(CAS_RETRIES):
                current = await self.store.load(room_id)
                result = decide(current.room if current else None, command, self.policy)
                if isinstance(result, Refusal):
                    raise ProtocolError(str(result.code), result.message)
                seq = await self._commit(room_id, current, result)
                if seq is not None:
                    if result.room is None:
                        await self.bus.drop(room_id)
                        self._locks.pop(room_id, None)
                    return result, seq
            raise ProtocolError(ErrorCode.UNAVAILABLE, "The room is busy; retry.")

    async def check(self, room_id: str, command: Command) -> Room:
        """Decide a command that changes nothing (e.g. may this member send now?)."""
        current = await self.store.load(room_id)
        result = decide(current.room if current else None, command, self.policy)
        if isinstance(result, Refusal):
            raise ProtocolError(str(result.code), result.message)
        if result.room is None:
            raise ProtocolError(RefusalCode.room_not_found, "No such room.")
        return result.room

    async def check_held(self, room_id: str, command: Command, *, fresh: bool = False) -> Versioned:
        """`check` against the copy of the room this node holds (`fresh`: read it again), returning
        it with its version: the write that follows must name that version, so a decision on a
        copy that fell behind is never acted on."""
        current = await (self.store.load(room_id) if fresh else self.store.load_held(room_id))
        result = decide(current.room if current else None, command, self.policy)
        if isinstance(result, Refusal):
            raise ProtocolError(str(result.code), result.message)
        if result.room is None or current is None:
            raise ProtocolError(RefusalCode.room_not_found, "No such room.")
        return current

    async def snapshot(self, room_id: str) -> tuple[Room, int] | None:
        """The room and the sequence number its state corresponds to (read in one step)."""
        current = await self.store.load(room_id)
        if current is None:
            return None
        return current.room, current.seq

    async def restore(self, room: Room, seq: int) -> None:
        """Put back a room the backend lost, from a node's last known state (first node wins)."""
        async with self._locked(room.room_id):
            await self.store.commit(room.room_id, room, None, room.next_expiry(self.policy))
            await self.bus.restore(room.room_id, seq, room.epoch)

    async def sweep(
        self, before_end: Callable[[Room], Awaitable[None]] | None = None
    ) -> list[Room]:
        """End every room whose lifecycle deadline has passed; returns them as they were last.

        `before_end` runs while the room still exists (to tell its waiters, who are on no room
        channel); afterwards the shell drops what it keeps beside the room."""
        now = self.clock.now()
        ended: list[Room] = []
        for room_id in await self.store.due(now):
            before = await self.store.load(room_id)
            if before is None:
                continue
            dry_run = decide(before.room, Tick(now=now), self.policy)
            ending = not isinstance(dry_run, Refusal) and dry_run.room is None
            if ending and before_end is not None:
                await before_end(before.room)
            try:
                await self.apply(room_id, Tick(now=now))
            except ProtocolError:
                continue
            if ending:
                ended.append(before.room)
        return ended

    async def _commit(
        self, room_id: str, current: Versioned | None, decision: Decision
    ) -> int | None:
        """The decision's state and events in one step; None if another writer got there first."""
        ts_ms = int(self.clock.now() * 1000)
        events = [
            wire
            for event in decision.events
            if (wire := event_to_wire(room_id, event, ts_ms)) is not None
        ]
        room = decision.room
        if current is None:
            if room is None:
                return await self.bus.last_seq(room_id)  # nothing was there, nothing to write
            return await self.store.commit(
                room_id, room, None, room.next_expiry(self.policy), events, set_epoch=room.epoch
            )
        unchanged = current.room is room
        if unchanged and not events:
            return current.seq
        return await self.store.commit(
            room_id,
            room,
            current.version,
            room.next_expiry(self.policy) if room is not None else 0.0,
            events,
            set_epoch=room.epoch if room is not None else None,
            keep=unchanged,
        )
