"""What every feature's handlers share: the caller's seat, the refusal of a drained bucket, the
room as stored, a card proven against the room's challenge, and the directed push to a room's
staff. One copy of each."""

from __future__ import annotations

from dataclasses import dataclass

from chatserver import e2ee
from chatserver.gateway import seat_proofs
from chatserver.gateway.state import Connection, Seat
from chatserver.node import Node
from chatserver.ports import Versioned
from chatserver.protocol import ErrorCode, ProtocolError
from chatserver.protocol.ids import unb64id
from chatserver.protocol.pushes import PushBody, to_wire
from rooms import Role, Room
from rooms.errors import RefusalCode


def rate_limit(wait: float, what: str) -> None:
    """Refuse with `rate_limited` while a bucket says to wait `wait` seconds."""
    if wait > 0:
        # At least 1 ms: the ack rounds to 3 decimals, and "retry after 0" invites a hot loop.
        raise ProtocolError(
            ErrorCode.RATE_LIMITED, f"Too many {what}; slow down.", max(wait, 0.001)
        )


def seat_of(conn: Connection, room_id: str) -> Seat:
    """The seat this connection holds in the room, or `not_in_room`."""
    seat = conn.seats.get(room_id)
    if seat is None:
        raise ProtocolError(ErrorCode.NOT_IN_ROOM, "Not a member of this room.")
    return seat


async def load_room(node: Node, room_id: str) -> Room:
    """The room as stored, or `room_not_found`."""
    current = await node.store.load(room_id)
    if current is None:
        raise ProtocolError(RefusalCode.room_not_found, "No such room.")
    return current.room


async def tell_staff(node: Node, room: Room, push: PushBody) -> None:
    """A directed push to each host and moderator of the room (each on its own node)."""
    event = to_wire(push)
    for member in room.members:
        if member.role is not Role.member:
            await node.bus.send_direct(room.room_id, member.member_id, event)


@dataclass(frozen=True, slots=True)
class ProvenCard:
    """A join's or knock's card, checked against this connection's room challenge."""

    current: Versioned
    room_key: bytes
    card: e2ee.KeyCard
    # The link proof over the same nonce: True, False, or None when none was sent.
    link_proof: bool | None


async def prove_card(
    node: Node, conn: Connection, room_id: str, card: bytes, seat_proof: bytes, proof: bytes | None
) -> ProvenCard:
    """The room as stored and the caller's card, its seat proof checked (the challenge is used up):
    `room_not_found`, `no_challenge`, `bad_card` or `bad_seat_proof` otherwise."""
    current = await node.store.load(room_id)
    if current is None:
        raise ProtocolError(RefusalCode.room_not_found, "No such room.")
    room_key = unb64id(room_id)
    nonce = seat_proofs.take_nonce(conn, room_id, node.clock.now())
    try:
        parsed = e2ee.parse_card(card, room_key)
    except e2ee.E2EEError:
        raise ProtocolError(ErrorCode.BAD_CARD, "The key card is invalid.") from None
    seat_proofs.require_seat_proof(parsed, room_key, nonce, seat_proof)
    link = seat_proofs.link_proof(current.room, room_key, nonce, parsed.member_id, proof)
    return ProvenCard(current, room_key, parsed, link)
