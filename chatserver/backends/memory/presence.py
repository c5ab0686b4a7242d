"""In-process Presence: seat deadlines on the only node."""

from __future__ import annotations


class MemoryPresence:
    """Seat deadlines in a dict; the only node is always the holder."""

    def __init__(self) -> None:
        self._seats: dict[tuple[str, str], tuple[str, float]] = {}

    async def touch(self, room_id: str, member_id: str, node_id: str, deadline: float) -> None:
        self._seats[(room_id, member_id)] = (node_id, deadline)

    async def touch_many(self, seats: list[tuple[str, str]], node_id: str, deadline: float) -> None:
        for seat in seats:
            self._seats[seat] = (node_id, deadline)

    async def holder(self, room_id: str, member_id: str) -> str | None:
        seat = self._seats.get((room_id, member_id))
        return seat[0] if seat else None

    async def remove(self, room_id: str, member_id: str) -> None:
        self._seats.pop((room_id, member_id), None)

    async def claim_expired(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        lapsed = [key for key, (_, deadline) in self._seats.items() if deadline <= now][:limit]
        for key in lapsed:
            del self._seats[key]
        return lapsed
