"""In-process ReplayGuard."""

from __future__ import annotations

from dataclasses import dataclass

from chatserver.ports import Claim


@dataclass
class _Last:
    index: int
    digest: bytes
    seq: int = -1
    ts_ms: int = 0


class MemoryReplayGuard:
    """Highest accepted index per (room, sender, key id), with the digest of that envelope."""

    def __init__(self) -> None:
        self._last: dict[str, dict[tuple[str, int], _Last]] = {}

    async def claim(
        self, room_id: str, sender_id: str, key_id: int, index: int, digest: bytes
    ) -> Claim:
        chains = self._last.setdefault(room_id, {})
        last = chains.get((sender_id, key_id))
        if last is not None and index <= last.index:
            if last.digest == digest and last.seq >= 0:
                return (last.seq, last.ts_ms)
            return "stale"
        chains[(sender_id, key_id)] = _Last(index, digest)
        return "new"

    async def confirm(
        self, room_id: str, sender_id: str, key_id: int, digest: bytes, seq: int, ts_ms: int
    ) -> None:
        last = self._last.get(room_id, {}).get((sender_id, key_id))
        if last is not None and last.digest == digest:
            last.seq, last.ts_ms = seq, ts_ms

    async def drop(self, room_id: str) -> None:
        self._last.pop(room_id, None)
