"""Per-room identities and the self-signed key cards that publish them.

A fresh Ed25519 (signing) and X25519 (sealing) pair per room means nothing
links a pseudonym across rooms. ``member_id`` is a hash of both public keys,
so the server cannot pair an id with a key it chose, and the card's
self-signature binds the X25519 key to the signing key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .constants import CARD_BODY_LEN, CARD_LEN, ID_LEN, KEY_LEN, U64_MAX, VERSION, ds
from .errors import E2EEError
from .primitives import (
    Rng,
    ct_eq,
    default_rng,
    ed25519_keypair,
    ed25519_public_is_acceptable,
    ed25519_verify,
    random_bytes,
    sha256,
    u64,
    x25519_keypair,
    x25519_public_is_acceptable,
)


def derive_member_id(ed_public: bytes, x_public: bytes) -> bytes:
    """member_id = SHA-256(DS("member") || ed_pub || x_pub)[0:16]."""
    return sha256(ds("member") + ed_public + x_public)[:ID_LEN]


class Identity:
    """A member's private keys for one room. Held in memory only; ``repr`` hides keys."""

    __slots__ = ("_ed", "_x", "ed_public", "member_id", "x_public")

    def __init__(self, ed: Ed25519PrivateKey, x: X25519PrivateKey) -> None:
        self._ed = ed
        self._x = x
        self.ed_public: bytes = ed.public_key().public_bytes_raw()
        self.x_public: bytes = x.public_key().public_bytes_raw()
        self.member_id: bytes = derive_member_id(self.ed_public, self.x_public)

    @classmethod
    def generate(cls, rng: Rng = default_rng) -> Identity:
        return cls.from_seeds(random_bytes(rng, KEY_LEN), random_bytes(rng, KEY_LEN))

    @classmethod
    def from_seeds(cls, ed_seed: bytes, x_seed: bytes) -> Identity:
        """Deterministic construction (test vectors, or keys derived from a user secret)."""
        if len(ed_seed) != KEY_LEN or len(x_seed) != KEY_LEN:
            raise E2EEError("bad_length", "seeds must be 32 bytes")
        ed, _ = ed25519_keypair(ed_seed)
        x, _ = x25519_keypair(x_seed)
        return cls(ed, x)

    @property
    def x_private(self) -> X25519PrivateKey:
        """The HPKE recipient key (used only to open SKDs addressed to us)."""
        return self._x

    def sign(self, data: bytes) -> bytes:
        return self._ed.sign(data)

    def card(self, room_id: bytes, created_ms: int) -> bytes:
        """``0x01 || room_id || member_id || ed_pub || x_pub || u64 created || sig``."""
        if len(room_id) != ID_LEN or not 0 <= created_ms <= U64_MAX:
            raise E2EEError("bad_length", "room id 16 bytes, created_ms u64")
        body = (bytes([VERSION]) + room_id + self.member_id + self.ed_public + self.x_public) + u64(
            created_ms
        )
        return body + self.sign(ds("card") + body)

    def __repr__(self) -> str:
        return f"Identity(member_id={self.member_id.hex()})"


@dataclass(frozen=True)
class KeyCard:
    """A parsed, verified key card."""

    raw: bytes = field(repr=False)
    room_id: bytes
    member_id: bytes
    ed_public: bytes
    x_public: bytes
    created_ms: int


def parse_card(raw: bytes, room_id: bytes | None = None) -> KeyCard:
    """Verify layout, member_id derivation, key sanity, self-signature and room."""
    if len(raw) < 1:
        raise E2EEError("malformed", "empty card")
    if raw[0] != VERSION:
        raise E2EEError("unknown_version", "card version")
    if len(raw) != CARD_LEN:
        raise E2EEError("bad_length", f"card must be {CARD_LEN} bytes")
    o = 1
    card_room = raw[o : o + ID_LEN]
    o += ID_LEN
    member_id = raw[o : o + ID_LEN]
    o += ID_LEN
    ed_public = raw[o : o + 32]
    o += 32
    x_public = raw[o : o + 32]
    o += 32
    created_ms = int.from_bytes(raw[o : o + 8], "big")
    body, sig = raw[:CARD_BODY_LEN], raw[CARD_BODY_LEN:]
    if not ed25519_public_is_acceptable(ed_public) or not x25519_public_is_acceptable(x_public):
        raise E2EEError("bad_card", "weak public key")
    # Compared in constant time out of habit; member ids are public anyway.
    if not ct_eq(member_id, derive_member_id(ed_public, x_public)):
        raise E2EEError("bad_card", "member_id is not derived from the keys")
    if not ed25519_verify(ed_public, sig, ds("card") + body):
        raise E2EEError("bad_card", "self-signature does not verify")
    if room_id is not None and not ct_eq(card_room, room_id):
        raise E2EEError("wrong_room", "card is for another room")
    return KeyCard(
        raw=bytes(raw),
        room_id=card_room,
        member_id=member_id,
        ed_public=ed_public,
        x_public=x_public,
        created_ms=created_ms,
    )
