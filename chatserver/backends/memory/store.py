"""In-process RoomStore: the embedded single-node default."""

from __future__ import annotations

from collections.abc import Sequence

from chatserver.backends.memory.bus import MemoryRoomBus
from chatserver.ports import Versioned, WireEvent
from rooms import Room, Visibility


class MemoryRoomStore:
    """Rooms in a dict; compare-and-set on a version counter; events through the node's bus.

    A commit checks, writes and numbers its events without yielding to the event loop, so no other
    coroutine sees the state without its events (or the reverse); delivery follows."""

    def __init__(self, bus: MemoryRoomBus) -> None:
        self._bus = bus
        self._rooms: dict[str, Versioned] = {}
        self._due: dict[str, float] = {}
        bus.check_state_with(self.version)

    async def load(self, room_id: str) -> Versioned | None:
        stored = self._rooms.get(room_id)
        if stored is None:
            return None
        return Versioned(stored.room, stored.version, self._bus.seq_now(room_id))

    async def load_held(self, room_id: str) -> Versioned | None:
        return await self.load(room_id)  # the only copy is the current one

    def version(self, room_id: str) -> int | None:
        """The stored version, without yielding (what the bus checks an append's guard against)."""
        stored = self._rooms.get(room_id)
        return stored.version if stored is not None else None

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
        current = self._rooms.get(room_id)
        if (current.version if current else None) != expected_version:
            return None
        if not keep:
            if room is None:
                self._rooms.pop(room_id, None)
                self._due.pop(room_id, None)
            else:
                self._rooms[room_id] = Versioned(room, (expected_version or 0) + 1)
                self._due[room_id] = due_at
        seq = self._bus.seq_now(room_id)
        for event in events:
            seq = self._bus.sequence(room_id, event, set_epoch)
        for event in events:
            await self._bus.deliver(room_id, event)
        return seq

    async def listed(self) -> list[Room]:
        return [v.room for v in self._rooms.values() if v.room.visibility is Visibility.listed]

    async def due(self, now: float) -> list[str]:
        return [room_id for room_id, at in self._due.items() if at <= now]
