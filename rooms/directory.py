"""What the public room directory may show about a room, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass

from rooms.model import Room, RoomKind, RoomState, Visibility


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One listed room: never member names, keys or the encrypted title."""

    room_id: str
    topic: str
    kind: RoomKind
    member_count: int
    created_at: float


def directory_entry(room: Room) -> DirectoryEntry | None:
    """The directory entry for a listed, not-ended room someone is in; None for anything else.

    A seat in its resume grace (a reload, a dropped phone) is still a member, so it counts here
    as it does in `member_count`: nobody is listed as "0 people here"."""
    if room.visibility is not Visibility.listed or room.topic is None:
        return None
    if room.state is RoomState.ended or not room.members:
        return None
    return DirectoryEntry(room.room_id, room.topic, room.kind, len(room.members), room.created_at)
