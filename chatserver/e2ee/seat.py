"""Proof of possession of a seat: the joiner signs the server's challenge with its card's key.

A card is public (every member receives every card), so presenting one proves nothing. Before
`room.join`, `lobby.knock` or `room.resume` the server hands the connection a fresh, single-use
nonce for that room (`room.challenge`); the client signs

    DS("seat") || room_id(16) || nonce || member_id(16)

with the Ed25519 key of the card it presents (or, for a resume, of the card the seat holds). Only
the holder of the card's private key can take or resume its seat, the host's included. The label
differs from the link proof's DS("join"), so neither signature can stand in for the other.
"""

from __future__ import annotations

from .constants import SIG_LEN, ds
from .errors import E2EEError
from .identity import Identity
from .primitives import ed25519_verify
from .room_secret import challenge_inputs_ok


def seat_message(room_id: bytes, nonce: bytes, member_id: bytes) -> bytes:
    """The bytes a seat proof signs."""
    return ds("seat") + room_id + nonce + member_id


def sign_seat(identity: Identity, room_id: bytes, nonce: bytes) -> bytes:
    """The client's answer to a room challenge, for the seat of this identity's card."""
    if not challenge_inputs_ok(room_id, nonce, identity.member_id):
        raise E2EEError("bad_length", "seat nonce must be 16..64 bytes, ids 16")
    return identity.sign(seat_message(room_id, nonce, identity.member_id))


def verify_seat_proof(
    ed_public: bytes, room_id: bytes, nonce: bytes, member_id: bytes, proof: bytes
) -> bool:
    """Server-side check; False (never raises) on any bad input."""
    if not challenge_inputs_ok(room_id, nonce, member_id) or len(proof) != SIG_LEN:
        return False
    return ed25519_verify(ed_public, proof, seat_message(room_id, nonce, member_id))
