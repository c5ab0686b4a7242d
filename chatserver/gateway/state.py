"""Node-local connection state: which socket holds which seat in which room."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(slots=True)
class Connection:
    """One Socket.IO connection and its per-connection limits."""

    sid: str
    msg_bucket: TokenBucket
    typing_bucket: TokenBucket
    join_bucket: TokenBucket
    create_bucket: TokenBucket
    # room.list, room.challenge, room.rename: cheap but not free, and rename reaches the whole room.
    control_bucket: TokenBucket
    seats: dict[str, Seat] = field(default_factory=dict)
    # room id -> (nonce, deadline): the live room challenge of this connection, used once.
    challenges: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    # Moderation (chatserver/gateway/handlers/therapist.py, lobby.py): a signed-in therapist's credential,
    # the pending sign-in nonce, and the lobbies this connection waits in (room -> waiter seat).
    therapist: Credential | None = None
    signin_nonce: bytes | None = None
    waiting: dict[str, Seat] = field(default_factory=dict)

    def remember_challenge(self, room_id: str, nonce: bytes, now: float) -> None:
        self.challenges.pop(room_id, None)
        while len(self.challenges) >= MAX_CHALLENGES:
            self.challenges.pop(next(iter(self.challenges)))
        self.challenges[room_id] = (nonce, now + CHALLENGE_TTL_S)

    def take_challenge(self, room_id: str, now: float) -> bytes | None:
        """The room's live challenge, consumed: a nonce answers one request, never two."""
        entry = self.challenges.pop(room_id, None)
        if entry is None or now > entry[1]:
            return None
        return entry[0]


class LocalRegistry:
    """Connections and seats on this node, indexed both ways."""

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
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
