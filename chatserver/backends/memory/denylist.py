"""In-process Denylist."""

from __future__ import annotations


class MemoryDenylist:
    """Entries with their expiry time; expired ones are dropped when met."""

    def __init__(self) -> None:
        self._lists: dict[str, dict[str, float]] = {}

    async def add(self, name: str, item: str, expires_at: float) -> None:
        self._lists.setdefault(name, {})[item] = expires_at

    async def remove(self, name: str, item: str) -> None:
        self._lists.get(name, {}).pop(item, None)

    async def contains(self, name: str, item: str, now: float) -> bool:
        entries = self._lists.get(name, {})
        expires_at = entries.get(item)
        if expires_at is not None and expires_at <= now:
            del entries[item]
            return False
        return expires_at is not None

    async def items(self, name: str, now: float) -> list[str]:
        entries = self._lists.get(name, {})
        for item in [i for i, at in entries.items() if at <= now]:
            del entries[item]
        return sorted(entries, key=entries.__getitem__)
