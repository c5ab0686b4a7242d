"""Node-local connection state: which socket holds which seat in which room."""

from __future__ import annotations

from dataclasses import dataclass

from chatserver.credentials import Credential
from chatserver.e2ee import KeyCard
from chatserver.token_bucket import TokenBucket
from rooms import Room

MAX_CHALLENGES = 8
# A room challenge answers one join, knock or resume on its connection within this time.
CHALLENGE_TTL_S = 60.0


@dataclass
class Seat:
    """A member's place in a room, held by one connection of this node."""

    room_id: str
    member_id: str
    card: KeyCard
    sid: str


@dataclass(frozen=True, slots=True)
class Limits:
    """The (rate per second, burst) of each per-connection bucket: one object per node, shared by
    every connection record."""

    msg: tuple[float, int]
    typing: tuple[float, int]
    join: tuple[float, int]
    create: tuple[float, int]
    # room.list, room.challenge, room.rename: cheap but not free, and rename reaches the whole room.
    control: tuple[float, int]


class Connection:
    """One Socket.IO connection and its per-connection limits.

    An idle connection holds only its sid and the node's `Limits`: each bucket is made the first
    time a request takes from it (a new bucket is full, so this changes no limit), and each table
    (seats, challenges, lobbies) the first time it is used."""

    __slots__ = (
        "_challenges",
        "_control",
        "_create",
        "_join",
        "_msg",
        "_seats",
        "_typing",
        "_waiting",
        "limits",
        "sid",
        "signin_nonce",
        "therapist",
    )

    def __init__(self, sid: str, limits: Limits) -> None:
        self.sid = sid
        self.limits = limits
        self._msg: TokenBucket | None = None
        self._typing: TokenBucket | None = None
        self._join: TokenBucket | None = None
        self._create: TokenBucket | None = None
        self._control: TokenBucket | None = None
        self._seats: dict[str, Seat] | None = None
        self._challenges: dict[str, tuple[bytes, float]] | None = None
        self._waiting: dict[str, Seat] | None = None
        # Moderation (chatserver/gateway/handlers/therapist.py, lobby.py): a signed-in therapist's
        # credential and the pending sign-in nonce.
        self.therapist: Credential | None = None
        self.signin_nonce: bytes | None = None

    def __repr__(self) -> str:
        return f"Connection(sid={self.sid!r}, seats={list(self._seats or ())})"

    @property
    def msg_bucket(self) -> TokenBucket:
        if self._msg is None:
            self._msg = TokenBucket(*self.limits.msg)
        return self._msg

    @property
    def typing_bucket(self) -> TokenBucket:
        if self._typing is None:
            self._typing = TokenBucket(*self.limits.typing)
        return self._typing

    @property
    def join_bucket(self) -> TokenBucket:
        if self._join is None:
            self._join = TokenBucket(*self.limits.join)
        return self._join

    @property
    def create_bucket(self) -> TokenBucket:
        if self._create is None:
            self._create = TokenBucket(*self.limits.create)
        return self._create

    @property
    def control_bucket(self) -> TokenBucket:
        if self._control is None:
            self._control = TokenBucket(*self.limits.control)
        return self._control

    @property
    def seats(self) -> dict[str, Seat]:
        """Room id -> the seat this connection holds in it."""
        if self._seats is None:
            self._seats = {}
        return self._seats

    @property
    def challenges(self) -> dict[str, tuple[bytes, float]]:
        """Room id -> (nonce, deadline): the live room challenge of this connection, used once."""
        if self._challenges is None:
            self._challenges = {}
        return self._challenges

    @property
    def waiting(self) -> dict[str, Seat]:
        """The lobbies this connection waits in (room id -> waiter seat)."""
        if self._waiting is None:
            self._waiting = {}
        return self._waiting

    def remember_challenge(self, room_id: str, nonce: bytes, now: float) -> None:
        challenges = self.challenges
        challenges.pop(room_id, None)
        while len(challenges) >= MAX_CHALLENGES:
            challenges.pop(next(iter(challenges)))
        challenges[room_id] = (nonce, now + CHALLENGE_TTL_S)

    def take_challenge(self, room_id: str, now: float) -> bytes | None:
        """The room's live challenge, consumed: a nonce answers one request, never two."""
        if not self._challenges:
            return None
        entry = self._challenges.pop(room_id, None)
        if entry is None or now > entry[1]:
            return None
        return entry[0]


class LocalRegistry:
    """Connections and seats on this node, indexed both ways."""

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.limits: Limits | None = None  # the connections' bucket limits (set at the first)
        self.seats: dict[tuple[str, str], Seat] = {}
        self.rooms: dict[str, set[str]] = {}
        # The last known state of each room held here: what this node restores if Redis loses it.
        self.known: dict[str, Room] = {}

    def seat(self, room_id: str, member_id: str) -> Seat | None:
        return self.seats.get((room_id, member_id))

    def add_seat(self, seat: Seat) -> bool:
        """Register a seat; True when it is the room's first on this node (subscribe then)."""
        self.seats[(seat.room_id, seat.member_id)] = seat
        members = self.rooms.setdefault(seat.room_id, set())
        members.add(seat.member_id)
        return len(members) == 1

    def remove_seat(self, room_id: str, member_id: str) -> Seat | None:
        """Forget a seat; the caller unsubscribes when `has_room` turns False."""
        seat = self.seats.pop((room_id, member_id), None)
        members = self.rooms.get(room_id)
        if members is not None:
            members.discard(member_id)
            if not members:
                del self.rooms[room_id]
                self.known.pop(room_id, None)
        if seat is not None:
            conn = self.connections.get(seat.sid)
            if conn is not None and conn.seats.get(room_id) is seat:
                del conn.seats[room_id]
        return seat

    def has_room(self, room_id: str) -> bool:
        return room_id in self.rooms
