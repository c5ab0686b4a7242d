"""A malicious-server harness: a real node whose room events and directed pushes the test controls.

It sits where a compromised server or a Redis writer sits: between the bus (what Redis carries)
and the gateway's fan-out to the websockets. The test can rewrite or drop each event on its way
to the clients, replay one it recorded, or inject one nobody sent, with the next sequence number
so that clients take it as the room's next event. Clients under test are real: the Python client
over a real websocket (tests/test_malicious_server.py); the browser client's replica is driven
with the same attacks under node (web/test/client_trust.test.mjs).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

from chatserver.node import Node
from chatserver.ports import BusEvents

Event = dict[str, Any]
Rewrite = Callable[[str, Event], Event | None]


class Tamper:
    """Wraps a node's bus events (`BusEvents`). `rewrite(room_id, event)` returns the event to
    deliver (a changed copy, the same one, or None to drop it); every event is also recorded as
    sent. Gaps, lost rooms and resubscriptions pass through untouched."""

    def __init__(self, node: Node) -> None:
        bus: Any = node.bus
        self._bus = bus
        self._inner: BusEvents = bus._events
        self._room: Callable[[str, Event], Awaitable[None]] = self._inner.room_event
        self._direct: Callable[[str, str, Event], Awaitable[None]] = self._inner.direct_event
        bus._events = self
        self.rewrite: Rewrite | None = None
        self.room_events: list[tuple[str, Event]] = []
        self.direct_events: list[tuple[str, str, Event]] = []
        self.last_seq: dict[str, int] = {}
        self.shift: dict[str, int] = {}

    async def room_event(self, room_id: str, event: Event) -> None:
        self.room_events.append((room_id, copy.deepcopy(event)))
        if isinstance(event.get("seq"), int):
            # After injections, the server's own events move up by as many, so that clients
            # take them as the next ones (a lying server numbers the stream as it likes).
            event = {**event, "seq": event["seq"] + self.shift.get(room_id, 0)}
            self.last_seq[room_id] = max(self.last_seq.get(room_id, 0), event["seq"])
        out = self.rewrite(room_id, copy.deepcopy(event)) if self.rewrite else event
        if out is not None:
            await self._room(room_id, out)

    async def direct_event(self, room_id: str, member_id: str, event: Event) -> None:
        self.direct_events.append((room_id, member_id, copy.deepcopy(event)))
        await self._direct(room_id, member_id, event)

    async def gap(self, room_id: str) -> None:
        await self._inner.gap(room_id)

    async def lost(self, room_id: str, last_seq: int) -> None:
        await self._inner.lost(room_id, last_seq)

    async def resubscribed(self) -> None:
        await self._inner.resubscribed()

    def recorded(self, name: str) -> list[Event]:
        """Every room event of this push name that went through, oldest first."""
        return [copy.deepcopy(e) for _, e in self.room_events if e.get("t") == name]

    async def inject(self, room_id: str, event: Event) -> Event:
        """Deliver `event` to the room's members on this node as its next ordered event (no
        signature, no core decision: exactly what a server or Redis writer can do)."""
        forged = copy.deepcopy(event)
        if "seq" in forged or forged.get("t") in ORDERED:
            forged["seq"] = self.last_seq.get(room_id, 0) + 1
            self.last_seq[room_id] = forged["seq"]
            self.shift[room_id] = self.shift.get(room_id, 0) + 1
        await self._room(room_id, forged)
        return forged

    async def inject_direct(self, room_id: str, member_id: str, event: Event) -> None:
        await self._direct(room_id, member_id, copy.deepcopy(event))


ORDERED = {"msg", "member.joined", "member.left", "member.updated", "room.updated"}
