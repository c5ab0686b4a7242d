"""Websockets that are open but have not sent the Socket.IO connect packet yet.

Until that packet, a websocket is nobody: no connection record, no buckets, no limits. So each one
gets a deadline (`connect_timeout_s`), and one address group (an IPv4 address, an IPv6 /64, as the
abuse guard hashes them) may hold at most `max_pending_per_address` of them at a time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

AddressKey = Callable[[Mapping[str, Any]], "str | None"]


def _no_address(environ: Mapping[str, Any]) -> str | None:
    return None


class PendingConnections:
    """Deadlines and per-address counts of not-yet-connected websockets, forgotten on settle."""

    def __init__(self, per_address: int, timeout_s: float) -> None:
        self.per_address = per_address
        self.timeout_s = timeout_s
        # The gateway installs the abuse guard's address hash (one identity for every limit).
        self.address_key: AddressKey = _no_address
        self._entries: dict[str, tuple[str | None, asyncio.TimerHandle]] = {}
        self._per_key: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._entries)

    def open(
        self, eio_sid: str, environ: Mapping[str, Any], on_deadline: Callable[[str], None]
    ) -> bool:
        """Track a fresh websocket; False if its address group already holds its share."""
        key = self.address_key(environ)
        if key is not None and self._per_key[key] >= self.per_address:
            return False
        if key is not None:
            self._per_key[key] += 1
        handle = asyncio.get_running_loop().call_later(
            self.timeout_s, self._lapse, eio_sid, on_deadline
        )
        self._entries[eio_sid] = (key, handle)
        return True

    def is_pending(self, eio_sid: str) -> bool:
        return eio_sid in self._entries

    def settle(self, eio_sid: str) -> None:
        """The websocket connected, or closed: it no longer counts."""
        entry = self._entries.pop(eio_sid, None)
        if entry is None:
            return
        key, handle = entry
        handle.cancel()
        if key is not None:
            self._per_key[key] -= 1
            if self._per_key[key] <= 0:
                del self._per_key[key]

    def _lapse(self, eio_sid: str, on_deadline: Callable[[str], None]) -> None:
        if eio_sid in self._entries:
            self.settle(eio_sid)
            on_deadline(eio_sid)
