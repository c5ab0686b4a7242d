"""What the client hands the application: room events, and the results of its calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from chatserver.links import RoomLink
from chatserver.pins import Pinned


@dataclass(frozen=True, slots=True)
class MemberInfo:
    pseudonym: str
    role: str  # the trusted role: "moderator" or "host" only with a host's signed statement
    card: bytes = field(repr=False)
    claimed: str = ""  # the role the server's view names
    role_proof: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Message:
    """A decrypted message, yielded once, in `seq` order. `own` marks our own messages."""

    seq: int
    ts: int  # server time, ms since the epoch
    sender_id: str
    pseudonym: str
    text: str = field(repr=False)
    body: dict[str, Any] = field(repr=False)  # the whole type-1 JSON body ({"text": ..., ...})
    own: bool = False
    evidence: Evidence | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class MemberJoined:
    seq: int
    ts: int
    member_id: str
    pseudonym: str
    role: str


@dataclass(frozen=True, slots=True)
class MemberLeft:
    seq: int
    ts: int
    member_id: str
    pseudonym: str
    reason: str  # left | removed | expired | disconnected
    epoch: int


@dataclass(frozen=True, slots=True)
class MemberUpdated:
    """A member's pseudonym or role changed (`old_pseudonym` is what the UI showed before)."""

    seq: int
    ts: int
    member_id: str
    pseudonym: str
    old_pseudonym: str
    role: str


@dataclass(frozen=True, slots=True)
class RoomUpdated:
    seq: int
    ts: int
    state: str
    paused: bool
    slow_mode_s: float


@dataclass(frozen=True, slots=True)
class PinChanged:
    """The room's pin as we can now read it. `resent`: the same pin again, re-sent under the
    current keys for a later joiner (or found on joining), not a new pin."""

    seq: int
    sender_id: str
    pseudonym: str
    pinned: Pinned
    resent: bool


@dataclass(frozen=True, slots=True)
class PinRemoved:
    seq: int
    by: str


@dataclass(frozen=True, slots=True)
class RoomEnded:
    """The room is over (or we are out of it); the event stream ends after this."""

    seq: int
    ts: int
    reason: str


@dataclass(frozen=True, slots=True)
class Typing:
    member_id: str
    pseudonym: str
    on: bool


@dataclass(frozen=True, slots=True)
class DecryptFailed:
    """An envelope that could not be opened (`code` is an e2ee error code); it is skipped."""

    seq: int
    ts: int
    sender_id: str
    pseudonym: str
    code: str


@dataclass(frozen=True, slots=True)
class KeyRejected:
    """A sealed sender key refused; `code == "equivocation"` flags the sender (show it)."""

    sender_id: str
    pseudonym: str
    code: str


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The connection came back. `resumed`: same seat; otherwise we rejoined with a new identity.
    `gap`: ordered events were missed (messages sent meanwhile are lost to us)."""

    resumed: bool
    gap: bool
    member_id: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a member keeps of a received message so it can report it (franking)."""

    env: bytes
    ts: int
    stamp: bytes
    franking_key: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class MessageHidden:
    """A message (by envelope digest) was hidden pending review, or restored."""

    seq: int
    digest: bytes
    hidden: bool


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    seq: int
    qa: bool
    rules: bytes | None


@dataclass(frozen=True, slots=True)
class LobbyUpdate:
    """For hosts and moderators: someone waits, was admitted or declined, or left the lobby."""

    member_id: str
    pseudonym: str
    status: str
    card: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReportReceived:
    """For hosts and moderators: a verified report (the text is what the sender really sent)."""

    digest: bytes
    reason: str
    sender_id: str
    sender_pseudonym: str | None
    text: str | None
    reporters: int
    hidden: bool


@dataclass(frozen=True, slots=True)
class Question:
    """For hosts in Q&A mode: a question sealed to us."""

    sender_id: str
    pseudonym: str
    text: str
    consent: bool  # the asker agreed to be named with the answer


RoomEvent: TypeAlias = (
    Message
    | MemberJoined
    | MemberLeft
    | MemberUpdated
    | RoomUpdated
    | RoomEnded
    | Typing
    | DecryptFailed
    | KeyRejected
    | Reconnected
    | MessageHidden
    | SessionUpdated
    | LobbyUpdate
    | ReportReceived
    | Question
    | PinChanged
    | PinRemoved
)


@dataclass(frozen=True, slots=True)
class Sent:
    """The server's acceptance of one of our messages."""

    seq: int
    ts: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class CreatedRoom:
    """A new room: `link` for everyone; `host_link` (session rooms) only for the host."""

    room_id: str
    link: RoomLink
    host_link: RoomLink | None
    expires_at: float | None
