"""Facts `decide` reports: what changed, for the shell to broadcast and persist.

Events carry only what members may see about each other (pseudonym, role, card),
never the resume token hash's meaning or anything that links rooms together.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rooms.model import Member, Room, RoomState, Waiter


class LeaveReason(StrEnum):
    """Why a member stopped being a member; every one of these bumps the epoch."""

    left = "left"  # they chose to leave (including quick-exit)
    removed = "removed"  # a moderator or host removed them
    expired = "expired"  # their presence heartbeat lapsed (a node died, a phone slept)
    disconnected = "disconnected"  # the socket closed and was not resumed in time


class EndReason(StrEnum):
    """Why a room ended; after any of these the room no longer exists."""

    ended_by_host = "ended_by_host"
    expired = "expired"  # reserved for shell-side expiry (e.g. an operator sweep)
    empty = "empty"  # empty for the whole grace period
    lifetime = "lifetime"  # reached the policy's hard maximum lifetime
    time_up = "time_up"  # a scheduled session reached its end (planned end plus the overrun)


@dataclass(frozen=True, slots=True)
class RoomCreated:
    """A room came into being."""

    room: Room


@dataclass(frozen=True, slots=True)
class MemberJoined:
    """A member joined; the epoch does not change (newcomers get the current chains)."""

    member: Member


@dataclass(frozen=True, slots=True)
class MemberLeft:
    """A member is gone; `epoch` is the new epoch every remaining member must rekey to."""

    member_id: str
    reason: LeaveReason
    epoch: int


@dataclass(frozen=True, slots=True)
class MemberUpdated:
    """A member's pseudonym, role or mute changed; carries the member as it now is."""

    member: Member


@dataclass(frozen=True, slots=True)
class RoomSettingsChanged:
    """Lock, pause, slow mode or a session's duration changed; carries the settings as they are."""

    state: RoomState
    paused: bool
    slow_mode_s: int
    duration_s: float | None = None
    ends_at: float | None = None


@dataclass(frozen=True, slots=True)
class RoomEnded:
    """The room ended and is gone; the shell drops its state and disconnects members."""

    reason: EndReason


class LobbyStatus(StrEnum):
    """Where a lobby entry stands."""

    waiting = "waiting"
    admitted = "admitted"
    declined = "declined"
    left = "left"  # the waiter gave up or disconnected


@dataclass(frozen=True, slots=True)
class LobbyChanged:
    """A lobby entry changed; the shell tells the room's staff and the waiter, nobody else."""

    waiter: Waiter
    status: LobbyStatus


@dataclass(frozen=True, slots=True)
class SessionChanged:
    """Q&A mode or the ground rules changed (shown to members and in the lobby)."""

    qa: bool
    rules: bytes | None


@dataclass(frozen=True, slots=True)
class MessageReported:
    """A message was hidden (the reporters' threshold, or a reviewer) or restored by a reviewer."""

    digest: bytes
    reporters: int
    hidden: bool


@dataclass(frozen=True, slots=True)
class PinCleared:
    """A host or moderator removed the pinned message."""

    actor_id: str


RoomEvent = (
    RoomCreated
    | MemberJoined
    | MemberLeft
    | MemberUpdated
    | RoomSettingsChanged
    | RoomEnded
    | LobbyChanged
    | SessionChanged
    | MessageReported
    | PinCleared
)
