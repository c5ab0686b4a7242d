"""Requests the shell asks `decide` to rule on.

Every command carries `now` (unix seconds) and any entropy it needs, because the
core reads no clock and draws no randomness: the same room and command always
give the same answer, which is what makes the property tests meaningful.
Actor ids are member ids the shell has already bound to the caller's socket.
"""

from __future__ import annotations

from dataclasses import dataclass

from rooms.model import Role, RoomKind, Visibility


@dataclass(frozen=True, slots=True)
class CreateRoom:
    """Create a room. `host_id` reserves the host seat (required for sessions).

    The shell picks `host_id` (the member id the creator will join with) when it
    creates the room, so the creator - for a session, the verified therapist -
    becomes host on joining, and nobody who happens to join first can take the seat.
    `capacity=None` means the policy default.
    """

    room_id: str
    kind: RoomKind
    visibility: Visibility
    topic: str | None
    title_ct: bytes | None
    join_key: bytes | None
    capacity: int | None
    now: float
    host_id: str | None = None
    # Session options (verified sessions): a lobby in front of the room, a schedule, Q&A mode,
    # ground rules (opaque, encrypted for private rooms) and the host's badge (opaque).
    lobby: bool = False
    starts_at: float | None = None
    duration_s: float | None = None
    qa: bool = False
    rules: bytes | None = None
    badge: bytes | None = None
    # Messages vanish from every screen this long after they were sent (0: they stay).
    disappear_after_s: int = 0
    charter: bytes | None = None  # private rooms: the link-signed host seat and lobby flag


@dataclass(frozen=True, slots=True)
class Join:
    """Join a room under a chosen nickname or an assigned pseudonym.

    `proof_ok` is the shell's verdict on the link-secret proof for unlisted rooms:
    None when no proof was offered, False when it failed, True when it verified.
    `pseudonym_entropy` picks the assigned pseudonym when `nickname` is None.
    """

    member_id: str
    card: bytes
    token_hash: bytes
    nickname: str | None
    pseudonym_entropy: int
    proof_ok: bool | None
    now: float
    rules_accepted: bool = False  # needed when the room has ground rules (see `join`)
    member_proof: bytes | None = None  # private rooms: kept on the member for the others to check


@dataclass(frozen=True, slots=True)
class Leave:
    """The member leaves of their own accord."""

    member_id: str
    now: float


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The member's connection is gone for good (`heartbeat_lapsed`: presence expired)."""

    member_id: str
    now: float
    heartbeat_lapsed: bool = False


@dataclass(frozen=True, slots=True)
class Remove:
    """A moderator or host removes a member."""

    actor_id: str
    member_id: str
    now: float


@dataclass(frozen=True, slots=True)
class Rename:
    """The member picks a new nickname."""

    member_id: str
    nickname: str
    now: float


@dataclass(frozen=True, slots=True)
class SetRole:
    """A host changes another member's role."""

    actor_id: str
    member_id: str
    role: Role
    now: float
    role_proof: bytes | None = None  # the acting host's signed statement, kept on the member


@dataclass(frozen=True, slots=True)
class Mute:
    """A moderator or host mutes a member for `duration_s`, or until unmuted if None."""

    actor_id: str
    member_id: str
    duration_s: float | None
    now: float


@dataclass(frozen=True, slots=True)
class Unmute:
    """A moderator or host lifts a mute."""

    actor_id: str
    member_id: str
    now: float


@dataclass(frozen=True, slots=True)
class CheckSend:
    """May this member send an envelope sealed for `epoch` now? Changes nothing."""

    member_id: str
    epoch: int
    now: float
    pin: bool = False  # the envelope is to be pinned (hosts and moderators only)


@dataclass(frozen=True, slots=True)
class SetPin:
    """Record a sequenced `msg` push as the room's pin; an older `seq` than the current pin loses."""

    actor_id: str
    seq: int
    push: bytes
    now: float


@dataclass(frozen=True, slots=True)
class ClearPin:
    """Remove the room's pin (host or moderator)."""

    actor_id: str
    now: float


@dataclass(frozen=True, slots=True)
class SetDuration:
    """Change a session's planned duration (hosts): extend it, or shorten it."""

    actor_id: str
    duration_s: float
    now: float


@dataclass(frozen=True, slots=True)
class Lock:
    """Stop new joins (host or moderator)."""

    actor_id: str
    now: float


@dataclass(frozen=True, slots=True)
class Unlock:
    """Allow new joins again (host or moderator)."""

    actor_id: str
    now: float


@dataclass(frozen=True, slots=True)
class SetPaused:
    """Pause or resume the room: while paused only hosts and moderators send."""

    actor_id: str
    paused: bool
    now: float


@dataclass(frozen=True, slots=True)
class SetSlowMode:
    """Set the minimum seconds between one member's messages (0 = off).

    The core records the setting; the shell's rate limiter enforces it, because
    per-send timestamps are hot, per-node state the room value should not carry.
    """

    actor_id: str
    slow_mode_s: int
    now: float


@dataclass(frozen=True, slots=True)
class End:
    """End the room now (host; or a moderator of a peer room)."""

    actor_id: str
    now: float


@dataclass(frozen=True, slots=True)
class Knock:
    """Wait in a lobby room's lobby. `banned`: the shell found one of the room's ban keys.

    `rules_accepted` must be True when the room has ground rules. The pseudonym is fixed here
    (chosen nickname or assigned), so hosts see who is waiting.
    """

    member_id: str
    card: bytes
    nickname: str | None
    pseudonym_entropy: int
    proof_ok: bool | None
    rules_accepted: bool
    banned: bool
    now: float


@dataclass(frozen=True, slots=True)
class Admit:
    """A host or moderator admits a waiter; `admission` is the host's signature over their card."""

    actor_id: str
    member_id: str
    admission: bytes
    now: float


@dataclass(frozen=True, slots=True)
class Decline:
    """A host or moderator turns a waiter away (also: the waiter gives up)."""

    actor_id: str
    member_id: str
    now: float


@dataclass(frozen=True, slots=True)
class SetQA:
    """Q&A mode on or off (hosts): only hosts post; members send questions to hosts."""

    actor_id: str
    qa: bool
    now: float


@dataclass(frozen=True, slots=True)
class SetRules:
    """Replace the ground rules (host or moderator); None removes them."""

    actor_id: str
    rules: bytes | None
    now: float


@dataclass(frozen=True, slots=True)
class Ban:
    """Remove a member and keep `keys` (their member id, and their address key when the shell
    knows it on this node) out of the room."""

    actor_id: str
    member_id: str
    keys: frozenset[str]
    now: float


@dataclass(frozen=True, slots=True)
class AddBanKey:
    """The shell adds a banned member's address key to the room's bans: computed by the node that
    held the member's connection (the only one that knows the address), after the ban."""

    key: str
    now: float


@dataclass(frozen=True, slots=True)
class Report:
    """A member reports a message (already verified by the shell) by its envelope digest.

    `group` is the reporter's address group as the shell keys it for this room (empty: unknown,
    the member counts alone). Reporters of one group count once towards hiding the message."""

    actor_id: str
    digest: bytes
    now: float
    group: str = ""


@dataclass(frozen=True, slots=True)
class Review:
    """A host or moderator hides or restores a reported message."""

    actor_id: str
    digest: bytes
    hidden: bool
    now: float


@dataclass(frozen=True, slots=True)
class Tick:
    """Let time pass: ends the room if it outlived its lifetime or its empty grace."""

    now: float


Command = (
    CreateRoom
    | Join
    | Leave
    | Disconnect
    | Remove
    | Rename
    | SetRole
    | Mute
    | Unmute
    | CheckSend
    | Lock
    | Unlock
    | SetPaused
    | SetSlowMode
    | End
    | Tick
    | Knock
    | Admit
    | Decline
    | SetQA
    | SetRules
    | Ban
    | AddBanKey
    | Report
    | Review
    | SetPin
    | ClearPin
    | SetDuration
)
