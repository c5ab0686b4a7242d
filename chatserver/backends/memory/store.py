"""In-process RoomStore: the embedded single-node default."""

from __future__ import annotations

from chatserver.ports import Versioned
from rooms import Room, Visibility


class MemoryRoomStore:
    """Rooms in a dict; compare-and-set on a version counter."""

    def __init__(self) -> None:
        self._rooms: dict[str, Versioned] = {}
        self._due: dict[str, float] = {}

    async def load(self, room_id: str) -> Versioned | None:
        return self._rooms.get(room_id)

    async def save(self, room: Room, expected_version: int | None, due_at: float) -> bool:
        current = self._rooms.get(room.room_id)
        if (current.version if current else None) != expected_version:
            return False
        self._rooms[room.room_id] = Versioned(room, (expected_version or 0) + 1)
        self._due[room.room_id] = due_at
        return True

    async def delete(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)
        self._due.pop(room_id, None)

    async def listed(self) -> list[Room]:
        return [v.room for v in self._rooms.values() if v.room.visibility is Visibility.listed]

    async def due(self, now: float) -> list[str]:
        return [room_id for room_id, at in self._due.items() if at <= now]
