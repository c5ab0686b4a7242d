"""Proof of possession for room.join, lobby.knock and room.resume (docs/e2ee.md §3).

Cards are public, so a card proves nothing by itself: every request that takes or resumes a seat
answers this connection's room challenge with the card key's signature (and, in a private room,
with the link key's signature over the same nonce). One nonce, one request: the challenge is
consumed here whether the proofs verify or not, so a refused attempt cannot be retried with it.
"""

from __future__ import annotations

from chatserver import e2ee
from chatserver.e2ee.room_secret import verify_member_link_proof
from chatserver.e2ee.seat import verify_seat_proof
from chatserver.gateway.state import Connection
from chatserver.protocol import ErrorCode, ProtocolError
from rooms import Room


def take_nonce(conn: Connection, room_id: str, now: float) -> bytes:
    nonce = conn.take_challenge(room_id, now)
    if nonce is None:
        raise ProtocolError(ErrorCode.NO_CHALLENGE, "Ask for a room challenge first.")
    return nonce


def require_seat_proof(
    card: e2ee.KeyCard, room_key: bytes, nonce: bytes, seat_proof: bytes
) -> None:
    """Refuse unless the card's own key signed this nonce for this room."""
    if not verify_seat_proof(card.ed_public, room_key, nonce, card.member_id, seat_proof):
        raise ProtocolError(ErrorCode.BAD_SEAT_PROOF, "The seat proof does not verify.")


def require_member_proof(
    room: Room, room_key: bytes, member_id: bytes, member_proof: bytes | None
) -> bytes | None:
    """Private rooms: the member link proof the other members will check, checked here first
    so that an honest client never takes a seat its peers would refuse. None for listed rooms."""
    if room.join_key is None:
        return None
    if not verify_member_link_proof(room.join_key, room_key, member_id, member_proof):
        raise ProtocolError(ErrorCode.BAD_MEMBER_PROOF, "The member link proof does not verify.")
    return member_proof


def link_proof(
    room: Room, room_key: bytes, nonce: bytes, member_id: bytes, proof: bytes | None
) -> bool | None:
    """The private room's link proof over the same nonce: None when none is offered (the rooms
    core then refuses an unlisted room with `join_proof_required`)."""
    if room.join_key is None or proof is None:
        return None
    return e2ee.verify_join_proof(room.join_key, room_key, nonce, member_id, proof)
