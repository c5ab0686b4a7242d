"""What a room and a lobby place need of their connection (`ChatClient` provides it).

A protocol, so that `room`, `room_*` and `waiting` never import `connection` (which imports them):
the client package has no import cycle, not even a type-only one.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from chatserver import e2ee
from chatserver.links import RoomLink


class RoomHost(Protocol):
    """The connection a `Room` or a `Waiting` belongs to."""

    call_timeout: float
    key_wait: float
    reconnect_delay: float
    reconnect_delay_max: float
    reconnect_timeout: float
    rooms: dict[str, Any]  # room id -> Room
    _waiting: dict[str, Any]  # room id -> Waiting

    @property
    def _transport_up(self) -> bool: ...

    async def call(self, event: str, data: dict[str, Any], wait: float | None = None) -> Any: ...

    async def _raw_call(self, event: str, data: dict[str, Any], wait: float | None) -> Any: ...

    async def request(self, event: str, data: dict[str, Any]) -> dict[str, Any]: ...

    async def seat_proofs(self, link: RoomLink, identity: e2ee.Identity) -> dict[str, bytes]: ...

    def _spawn(self, coro: Any) -> asyncio.Task[Any]: ...

    async def _force_reconnect(self) -> None: ...
