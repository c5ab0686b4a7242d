"""The message envelope: fixed 130-byte header, padded AEAD ciphertext, signature.

Layout (big-endian):
  0 version | 1 suite | 2 room_id(16) | 18 sender_id(16) | 34 epoch u32 |
  38 key_id u32 | 42 index u32 | 46 salt(16) | 62 key_commit(32) |
  94 franking_commit(32) | 126 ct_len u32 | 130 ct | end sig(64)

The header is the AEAD associated data; the signature (sender's per-room
Ed25519 key over DS("sig") || header || ct) lets the server authenticate the
sender without any secret key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .constants import (
    BUCKETS,
    HEADER_LEN,
    ID_LEN,
    KEY_LEN,
    MAX_ENVELOPE_LEN,
    NONCE_LEN,
    SALT_LEN,
    SIG_LEN,
    SUITE,
    TAG_LEN,
    U32_MAX,
    VERSION,
    ds,
)
from .errors import E2EEError
from .identity import Identity, KeyCard
from .padding import pad, unpad
from .payload import Payload, decode_payload, encode_payload, franking_commitment
from .primitives import aead_open, aead_seal, ct_eq, ed25519_verify, hkdf_sha256

_HEADER = struct.Struct(">BB16s16sIII16s32s32sI")
assert _HEADER.size == HEADER_LEN

_VALID_CT_LENS = frozenset(b + TAG_LEN for b in BUCKETS)
MSG_KEYS_LEN = KEY_LEN + NONCE_LEN + 32


def make_ctx(room_id: bytes, sender_id: bytes, epoch: int, key_id: int, index: int) -> bytes:
    """ctx = room_id || sender_id || u32 epoch || u32 key_id || u32 index."""
    return room_id + sender_id + struct.pack(">III", epoch, key_id, index)


@dataclass(frozen=True)
class EnvelopeHeader:
    version: int
    suite: int
    room_id: bytes
    sender_id: bytes
    epoch: int
    key_id: int
    index: int
    salt: bytes
    key_commit: bytes
    franking_commit: bytes
    ct_len: int

    @property
    def ctx(self) -> bytes:
        return make_ctx(self.room_id, self.sender_id, self.epoch, self.key_id, self.index)

    def pack(self) -> bytes:
        return _HEADER.pack(
            self.version,
            self.suite,
            self.room_id,
            self.sender_id,
            self.epoch,
            self.key_id,
            self.index,
            self.salt,
            self.key_commit,
            self.franking_commit,
            self.ct_len,
        )


@dataclass(frozen=True)
class MessageKeys:
    """Per-message AEAD key, nonce and key commitment (never reused)."""

    key: bytes
    nonce: bytes
    key_commit: bytes


def derive_message_keys(mk: bytes, salt: bytes, ctx: bytes) -> MessageKeys:
    """HKDF(ikm=mk, salt=salt, info=DS("msg")||ctx, L=76) -> key || nonce || key_commit."""
    okm = hkdf_sha256(mk, salt, ds("msg") + ctx, MSG_KEYS_LEN)
    return MessageKeys(okm[:32], okm[32:44], okm[44:76])


def parse_envelope(raw: bytes) -> EnvelopeHeader:
    """Structural checks only (no keys): exact length, known version/suite, bucketed ct_len."""
    if len(raw) > MAX_ENVELOPE_LEN:
        raise E2EEError("bad_length", "envelope too large")
    if len(raw) < 2:
        raise E2EEError("malformed", "envelope too short")
    if raw[0] != VERSION:
        raise E2EEError("unknown_version")
    if raw[1] != SUITE:
        raise E2EEError("unknown_suite")
    if len(raw) < HEADER_LEN:
        raise E2EEError("bad_length", "shorter than the header")
    h = EnvelopeHeader(*_HEADER.unpack_from(raw))
    if h.ct_len not in _VALID_CT_LENS:
        raise E2EEError("bad_length", "ct_len is not a bucket size + 16")
    if len(raw) != HEADER_LEN + h.ct_len + SIG_LEN:
        raise E2EEError("bad_length", "length does not match ct_len")
    return h


def verify_envelope(raw: bytes, card: KeyCard) -> EnvelopeHeader:
    """Parse, then check the claimed sender and room against ``card`` and the signature."""
    h = parse_envelope(raw)
    if not ct_eq(h.sender_id, card.member_id):
        raise E2EEError("wrong_sender", "sender_id is not the card's member")
    if not ct_eq(h.room_id, card.room_id):
        raise E2EEError("wrong_room", "card and envelope rooms differ")
    signed, sig = raw[:-SIG_LEN], raw[-SIG_LEN:]
    if not ed25519_verify(card.ed_public, sig, ds("sig") + signed):
        raise E2EEError("bad_signature", "envelope signature")
    return h


def seal_padded(
    identity: Identity,
    *,
    room_id: bytes,
    epoch: int,
    key_id: int,
    index: int,
    mk: bytes,
    salt: bytes,
    franking_commit: bytes,
    padded: bytes,
) -> bytes:
    """Low-level seal of an already padded payload (the tests use it to craft bad padding)."""
    if len(room_id) != ID_LEN or len(salt) != SALT_LEN or len(mk) != KEY_LEN:
        raise E2EEError("bad_length", "room id 16, salt 16, mk 32")
    if not all(0 <= v <= U32_MAX for v in (epoch, key_id, index)):
        raise E2EEError("malformed", "epoch, key_id and index are u32")
    ctx = make_ctx(room_id, identity.member_id, epoch, key_id, index)
    keys = derive_message_keys(mk, salt, ctx)
    header = EnvelopeHeader(
        version=VERSION,
        suite=SUITE,
        room_id=room_id,
        sender_id=identity.member_id,
        epoch=epoch,
        key_id=key_id,
        index=index,
        salt=salt,
        key_commit=keys.key_commit,
        franking_commit=franking_commit,
        ct_len=len(padded) + TAG_LEN,
    ).pack()
    ct = aead_seal(keys.key, keys.nonce, padded, header)
    signed = header + ct
    return signed + identity.sign(ds("sig") + signed)


def seal_envelope(
    identity: Identity,
    *,
    room_id: bytes,
    epoch: int,
    key_id: int,
    index: int,
    mk: bytes,
    salt: bytes,
    payload: Payload,
) -> bytes:
    """Build one envelope; deterministic given mk, salt and the franking key."""
    ctx = make_ctx(room_id, identity.member_id, epoch, key_id, index)
    fc = franking_commitment(payload.franking_key, ctx, payload.franked)
    return seal_padded(
        identity,
        room_id=room_id,
        epoch=epoch,
        key_id=key_id,
        index=index,
        mk=mk,
        salt=salt,
        franking_commit=fc,
        padded=pad(encode_payload(payload)),
    )


def open_with_key(raw: bytes, header: EnvelopeHeader, mk: bytes) -> Payload:
    """Receiver steps 4-6: key commitment, AEAD, padding, franking commitment.

    The caller has already parsed the envelope and verified its signature.
    """
    keys = derive_message_keys(mk, header.salt, header.ctx)
    if not ct_eq(keys.key_commit, header.key_commit):
        raise E2EEError("key_commitment", "key_commit mismatch")
    ct = raw[HEADER_LEN : HEADER_LEN + header.ct_len]
    padded = aead_open(keys.key, keys.nonce, ct, raw[:HEADER_LEN])
    if len(padded) not in BUCKETS:
        raise E2EEError("padding", "plaintext is not a bucket size")
    payload = decode_payload(unpad(padded))
    fc = franking_commitment(payload.franking_key, header.ctx, payload.franked)
    if not ct_eq(fc, header.franking_commit):
        raise E2EEError("franking", "franking commitment mismatch")
    return payload
