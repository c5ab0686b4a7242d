"""Room state as immutable values.

Everything here is a frozen dataclass or an enum so that `decide` can only
produce a *new* room, never mutate one the shell still holds; a stale copy
held by a concurrent handler therefore can never be half-updated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class RoomKind(StrEnum):
    """What sort of room this is; it decides who may run it."""

    peer = "peer"  # peer-support group; the creator (if any) hosts it
    session = "session"  # therapist-led; has a host seat that must be filled before others join


class Visibility(StrEnum):
    """How a room is found and joined."""

    listed = "listed"  # in the public directory by topic; joined by room id
    unlisted = "unlisted"  # private; joined only with proof of the link secret


class RoomState(StrEnum):
    """Admission state. `ended` rooms accept nothing; `decide` normally drops them."""

    open = "open"
    locked = "locked"  # members stay and talk; nobody new may join
    ended = "ended"


class Role(StrEnum):
    """A member's powers in one room, weakest first."""

    member = "member"
    moderator = "moderator"
    host = "host"


_RANK: Mapping[Role, int] = MappingProxyType({Role.member: 0, Role.moderator: 1, Role.host: 2})


def rank(role: Role) -> int:
    """Order roles so permission checks can say "strictly above" in one comparison."""
    return _RANK[role]


@dataclass(frozen=True, slots=True)
class Member:
    """One participant, known only by an opaque per-room id and a pseudonym."""

    member_id: str
    pseudonym: str
    role: Role
    card: bytes  # public key card; opaque to the core
    joined_at: float
    token_hash: bytes  # hash of the resume token; opaque to the core
    nick_chosen: bool  # False when the pseudonym was assigned by `pseudonyms.assign`
    muted_until: float | None = None  # None: not muted; math.inf: until unmuted
    # Lobby rooms: the host's signature over this member's admission (opaque to the core).
    admission: bytes | None = None
    # Private rooms: the link key's signature over this member's id, which the other members
    # check so that nobody without the link (the server included) adds a card unseen. Opaque.
    member_proof: bytes | None = None
    # The host's signed statement of this member's role (opaque; clients check it).
    role_proof: bytes | None = None
    # `pseudonym`'s confusable skeleton (`nicknames.lookalike_key`), kept beside it so that a join
    # compares the newcomer's name against n stored keys instead of re-deriving n skeletons (which
    # was most of a join's cost in a 100-member room). Set wherever the pseudonym is; "" = derive.
    name_key: str = ""

    def is_muted(self, now: float) -> bool:
        """True while a mute is in force; a mute ends exactly at `muted_until`."""
        return self.muted_until is not None and self.muted_until > now


@dataclass(frozen=True, slots=True)
class Waiter:
    """Someone waiting in a session's lobby: not a member, sees nothing of the conversation.

    `admission` is None while waiting; once a host admits them it holds the host's signature
    over their card, and their next `Join` makes them a member carrying it.
    """

    member_id: str
    card: bytes
    pseudonym: str
    knocked_at: float
    admission: bytes | None = None


@dataclass(frozen=True, slots=True)
class Flag:
    """Distinct members' reports of one message (by envelope digest), and whether it is hidden.

    `groups` are the reporters' address groups (as the shell keys them for this room): one person
    with several seats counts once towards hiding."""

    digest: bytes
    reporters: frozenset[str]
    hidden: bool = False
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Pin:
    """The room's pinned message: the `msg` push as the shell sequenced it (opaque to the core).

    Its envelope is sealed under a sender chain, so a later joiner can only read it once the
    pinner's client re-sends it under the current keys; `seq` orders competing pins.
    """

    seq: int
    sender_id: str
    push: bytes


@dataclass(frozen=True, slots=True)
class RoomPolicy:
    """Operator-tunable limits. Defaults suit a small community deployment."""

    empty_grace_s: float = 600.0  # an empty room disappears this long after its last member left
    max_lifetime_s: float = 86400.0  # hard cap: no room lives longer, members or not
    default_capacity: int = 50
    max_capacity: int = 500
    min_capacity: int = 2
    max_topic_chars: int = 64
    min_nickname_chars: int = 2
    max_nickname_chars: int = 32
    max_title_ct_bytes: int = 1024  # encrypted title; padded client-side, so this is generous
    max_join_key_bytes: int = 256
    max_slow_mode_s: int = 3600
    max_waiting: int = 100  # lobby places
    report_hide_threshold: int = 3  # reporters of distinct address groups that hide a message
    max_flags: int = 200  # reported messages a room remembers (oldest dropped)
    max_bans: int = 200
    max_rules_bytes: int = 2048  # ground rules (encrypted for private rooms)
    max_badge_bytes: int = 512
    max_disappear_after_s: int = 86400
    max_pin_bytes: int = 16384  # the pinned `msg` push (envelope, stamp and routing fields)
    # A session with a duration ends by itself this long after its planned end, so a host is
    # never cut off mid-sentence; hosts extend the duration to run longer.
    session_overrun_s: float = 600.0


@dataclass(frozen=True, slots=True)
class Room:
    """A room at one instant. `members` keeps join order (oldest first)."""

    room_id: str
    kind: RoomKind
    visibility: Visibility
    topic: str | None
    title_ct: bytes | None
    join_key: bytes | None
    state: RoomState
    epoch: int
    capacity: int
    created_at: float
    expires_at: float
    empty_since: float | None
    members: tuple[Member, ...] = ()
    # The owner's seat: whoever joins with this member id becomes host. Fixed at
    # creation so that no early joiner can take a therapist's place by racing them.
    host_id: str | None = None
    slow_mode_s: int = 0
    paused: bool = False
    # Sessions: a lobby in front of the room, an optional schedule, Q&A mode, ground rules and the
    # verified host's badge (a server-signed therapist credential plus its binding to `host_id`).
    lobby: bool = False
    waiting: tuple[Waiter, ...] = ()
    starts_at: float | None = None
    duration_s: float | None = None
    qa: bool = False
    rules: bytes | None = None
    badge: bytes | None = None
    # Set at creation and shown to all: clients remove each message this long after it was sent.
    disappear_after_s: int = 0
    # Room bans: opaque keys (member ids, keyed address hashes) the shell checks before a join.
    bans: frozenset[str] = frozenset()
    flags: tuple[Flag, ...] = ()
    pinned: Pin | None = None
    # When the server ends a scheduled session by itself (planned end plus the overrun grace).
    ends_at: float | None = None
    # Lobby rooms: members a host admitted who left without being removed; they may rejoin
    # with the same card (a reloaded page, a dropped phone) without waiting to be admitted again.
    readmit: tuple[Waiter, ...] = ()
    # Private rooms: the creator's charter (host seat, lobby) signed with the link key, which
    # clients check instead of believing `host_id` and `lobby` (opaque to the core).
    charter: bytes | None = None
    _index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        # A private lookup table; it is derived from `members`, so equality and
        # hashing ignore it. object.__setattr__ is the documented way to fill a
        # derived field on a frozen dataclass.
        index = {m.member_id: i for i, m in enumerate(self.members)}
        object.__setattr__(self, "_index", index)

    def member(self, member_id: str) -> Member | None:
        """The member with this id, or None if they are not in the room."""
        i = self._index.get(member_id)
        return None if i is None else self.members[i]

    def waiter(self, member_id: str) -> Waiter | None:
        """The lobby entry with this id, or None."""
        return next((w for w in self.waiting if w.member_id == member_id), None)

    def readmitted(self, member_id: str) -> Waiter | None:
        """The earlier admission of a former member who may rejoin directly, or None."""
        return next((w for w in self.readmit if w.member_id == member_id), None)

    def flag(self, digest: bytes) -> Flag | None:
        """The reports of the message with this envelope digest, or None."""
        return next((f for f in self.flags if f.digest == digest), None)

    def pseudonyms(self) -> tuple[str, ...]:
        """Every member's pseudonym, in join order."""
        return tuple(m.pseudonym for m in self.members)

    def host_present(self) -> bool:
        """True if any member currently holds the host role."""
        return any(m.role is Role.host for m in self.members)

    def next_expiry(self, policy: RoomPolicy) -> float:
        """When `Tick` would end this room, so the shell can schedule exactly one timer."""
        deadline = self.expires_at if self.ends_at is None else min(self.expires_at, self.ends_at)
        if not self.members and self.empty_since is not None:
            deadline = min(deadline, self.empty_since + policy.empty_grace_s)
        return deadline

    def is_due(self, now: float, policy: RoomPolicy) -> bool:
        """True once the room has outlived its lifetime or its empty grace."""
        return self.state is RoomState.ended or now >= self.next_expiry(policy)
