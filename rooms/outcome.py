"""What `decide` returns when it says yes."""

from __future__ import annotations

from dataclasses import dataclass

from rooms.errors import Refusal
from rooms.events import RoomEvent
from rooms.model import Room


@dataclass(frozen=True, slots=True)
class Decision:
    """The room after the command (None: the room no longer exists) and what happened."""

    room: Room | None
    events: tuple[RoomEvent, ...] = ()


Outcome = Decision | Refusal
