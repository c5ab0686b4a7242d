"""Private rooms by link: everything derives from the 32-byte secret in the URL fragment.

The fragment never reaches the server. From the secret we derive the public
room id (what the server routes on), an Ed25519 join key whose public half the
server stores (only link holders can prove possession, as in CryptPad), and a
meta key that encrypts the room title so the server cannot read it either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import (
    ID_LEN,
    JOIN_NONCE_MAX,
    JOIN_NONCE_MIN,
    KEY_LEN,
    META_BLOCK,
    META_MAX_TEXT,
    NONCE_LEN,
    SIG_LEN,
    TAG_LEN,
    VERSION,
    ds,
)
from .errors import E2EEError
from .padding import pad_to, unpad
from .primitives import (
    Rng,
    aead_open,
    aead_seal,
    default_rng,
    ed25519_keypair,
    ed25519_verify,
    hkdf_sha256,
    random_bytes,
)

SECRET_LEN = 32


def join_message(room_id: bytes, nonce: bytes, member_id: bytes) -> bytes:
    """Bytes signed by a join proof: DS("join") || room_id || nonce || member_id."""
    return ds("join") + room_id + nonce + member_id


def challenge_inputs_ok(room_id: bytes, nonce: bytes, member_id: bytes) -> bool:
    """Sizes of what a proof over a server challenge signs (join and seat proofs alike)."""
    return (
        len(room_id) == ID_LEN
        and len(member_id) == ID_LEN
        and JOIN_NONCE_MIN <= len(nonce) <= JOIN_NONCE_MAX
    )


@dataclass(frozen=True)
class RoomSecret:
    """The link secret and what derives from it. ``repr`` hides the secrets."""

    secret: bytes = field(repr=False)
    room_id: bytes
    join_public: bytes
    meta_key: bytes = field(repr=False)

    def sign_join(self, nonce: bytes, member_id: bytes) -> bytes:
        """Prove link possession to the server for a given server nonce and member."""
        if not challenge_inputs_ok(self.room_id, nonce, member_id):
            raise E2EEError("bad_length", "join nonce must be 16..64 bytes, ids 16")
        key, _ = ed25519_keypair(join_seed(self.secret))
        return key.sign(join_message(self.room_id, nonce, member_id))

    def sign_member(self, member_id: bytes) -> bytes:
        """Vouch, with the link key, that `member_id` holds the link: the members' check that
        the server did not add a card unseen (docs/e2ee.md §3, member link proof)."""
        if len(member_id) != ID_LEN:
            raise E2EEError("bad_length", "member ids are 16 bytes")
        key, _ = ed25519_keypair(join_seed(self.secret))
        return key.sign(member_link_message(self.room_id, member_id))


def member_link_message(room_id: bytes, member_id: bytes) -> bytes:
    """Bytes signed by a member link proof: DS("link-member") || room_id || member_id."""
    return ds("link-member") + room_id + member_id


def verify_member_link_proof(
    join_public: bytes, room_id: bytes, member_id: bytes, proof: object
) -> bool:
    """A member's link proof, checked by the other members (and the server); False on any bad
    input, never raises."""
    if not isinstance(proof, bytes) or len(proof) != SIG_LEN:
        return False
    if len(room_id) != ID_LEN or len(member_id) != ID_LEN:
        return False
    return ed25519_verify(join_public, proof, member_link_message(room_id, member_id))


def join_seed(secret: bytes) -> bytes:
    """The link key's Ed25519 seed (join proofs, member link proofs, charters)."""
    return hkdf_sha256(secret, None, ds("room-join"), 32)


def derive_room_secret(secret: bytes) -> RoomSecret:
    if len(secret) != SECRET_LEN:
        raise E2EEError("bad_length", "room secret must be 32 bytes")
    room_id = hkdf_sha256(secret, None, ds("room-id"), ID_LEN)
    _, join_public = ed25519_keypair(join_seed(secret))
    meta_key = hkdf_sha256(secret, None, ds("room-meta"), KEY_LEN)
    return RoomSecret(secret=secret, room_id=room_id, join_public=join_public, meta_key=meta_key)


def new_room_secret(rng: Rng = default_rng) -> RoomSecret:
    return derive_room_secret(random_bytes(rng, SECRET_LEN))


def verify_join_proof(
    join_public: bytes, room_id: bytes, nonce: bytes, member_id: bytes, proof: bytes
) -> bool:
    """Server-side check of a join proof; False (never raises) on any bad input."""
    if not challenge_inputs_ok(room_id, nonce, member_id) or len(proof) != SIG_LEN:
        return False
    return ed25519_verify(join_public, proof, join_message(room_id, nonce, member_id))


def _meta_aad(room_id: bytes) -> bytes:
    return ds("meta") + bytes([VERSION]) + room_id


def seal_meta(meta_key: bytes, room_id: bytes, text: str, rng: Rng = default_rng) -> bytes:
    """Encrypt a room title or nickname: ``0x01 || nonce(12) || ChaCha20-Poly1305``.

    Random nonces are safe here: meta items per key are few (far below 2^32).
    The plaintext is padded to a multiple of 64 bytes so titles leak only
    their rough size, and the AAD binds the room so a blob cannot be moved.
    """
    if len(meta_key) != KEY_LEN or len(room_id) != ID_LEN:
        raise E2EEError("bad_length", "meta key 32 bytes, room id 16")
    data = text.encode("utf-8")
    if len(data) > META_MAX_TEXT:
        raise E2EEError("bad_length", "meta text too long")
    size = (len(data) // META_BLOCK + 1) * META_BLOCK
    nonce = random_bytes(rng, NONCE_LEN)
    return (
        bytes([VERSION])
        + nonce
        + aead_seal(meta_key, nonce, pad_to(data, size), _meta_aad(room_id))
    )


def open_meta(meta_key: bytes, room_id: bytes, blob: bytes) -> str:
    if len(blob) < 1 + NONCE_LEN + META_BLOCK + TAG_LEN:
        raise E2EEError("bad_length", "meta blob too short")
    if blob[0] != VERSION:
        raise E2EEError("unknown_version")
    if (len(blob) - 1 - NONCE_LEN - TAG_LEN) % META_BLOCK:
        raise E2EEError("bad_length", "meta blob not block aligned")
    nonce = blob[1 : 1 + NONCE_LEN]
    padded = aead_open(meta_key, nonce, blob[1 + NONCE_LEN :], _meta_aad(room_id))
    try:
        return unpad(padded).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise E2EEError("malformed", "meta text is not UTF-8") from exc
