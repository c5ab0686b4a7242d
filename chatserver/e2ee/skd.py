"""Sender-key distribution (SKD): a chain key sealed to one member with HPKE.

Outer (signed, server-readable) layout, big-endian:
  0 version 0x01 | 1 type 0x02 | 2 room_id(16) | 18 sender_id(16) |
  34 recipient_id(16) | 50 epoch u32 | 54 key_id u32 | 58 len u16 (=125) |
  60 HPKE blob(125) | 185 sig(64) over DS("skd-sig") || bytes 0..184

Sealed plaintext (77 bytes):
  0x01 || room_id || sender_id || u32 epoch || u32 key_id || u32 start_index || chain_key(32)

HPKE base mode does not authenticate the sender, so the outer Ed25519
signature does; the HPKE info binds room, sender, recipient and epoch so a
blob cannot be re-addressed, and the inner copy of the fields must match
the signed outer ones.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .constants import (
    ID_LEN,
    KEY_LEN,
    SIG_LEN,
    SKD_BLOB_LEN,
    SKD_HEADER_LEN,
    SKD_LEN,
    SKD_PLAIN_LEN,
    SKD_TYPE,
    U32_MAX,
    VERSION,
    ds,
)
from .errors import E2EEError
from .identity import Identity, KeyCard
from .primitives import ct_eq, ed25519_verify, hpke_open, hpke_seal, u32

_OUTER = struct.Struct(">BB16s16s16sIIH")
_INNER = struct.Struct(">B16s16sIII32s")
assert _OUTER.size == SKD_HEADER_LEN
assert _INNER.size == SKD_PLAIN_LEN


@dataclass(frozen=True)
class SkdHeader:
    room_id: bytes
    sender_id: bytes
    recipient_id: bytes
    epoch: int
    key_id: int


@dataclass(frozen=True)
class SkdContent:
    """The opened SKD: where the sender's chain stands and its key."""

    header: SkdHeader
    start_index: int
    chain_key: bytes = field(repr=False)


def skd_info(room_id: bytes, sender_id: bytes, recipient_id: bytes, epoch: int) -> bytes:
    """HPKE info = DS("skd") || room_id || sender_id || recipient_id || u32 epoch."""
    return ds("skd") + room_id + sender_id + recipient_id + u32(epoch)


def skd_plaintext(
    room_id: bytes, sender_id: bytes, epoch: int, key_id: int, start_index: int, chain_key: bytes
) -> bytes:
    return _INNER.pack(VERSION, room_id, sender_id, epoch, key_id, start_index, chain_key)


def assemble_skd(identity: Identity, header: SkdHeader, blob: bytes) -> bytes:
    """Sign and frame an already sealed blob (deterministic: vectors record the blob)."""
    if len(blob) != SKD_BLOB_LEN:
        raise E2EEError("bad_length", "HPKE blob must be 125 bytes")
    outer = _OUTER.pack(
        VERSION,
        SKD_TYPE,
        header.room_id,
        header.sender_id,
        header.recipient_id,
        header.epoch,
        header.key_id,
        len(blob),
    )
    signed = outer + blob
    return signed + identity.sign(ds("skd-sig") + signed)


def seal_skd(
    identity: Identity,
    recipient: KeyCard,
    *,
    room_id: bytes,
    epoch: int,
    key_id: int,
    start_index: int,
    chain_key: bytes,
) -> bytes:
    if len(room_id) != ID_LEN or len(chain_key) != KEY_LEN:
        raise E2EEError("bad_length", "room id 16, chain key 32")
    if not all(0 <= v <= U32_MAX for v in (epoch, key_id, start_index)):
        raise E2EEError("malformed", "epoch, key_id and start_index are u32")
    plain = skd_plaintext(room_id, identity.member_id, epoch, key_id, start_index, chain_key)
    info = skd_info(room_id, identity.member_id, recipient.member_id, epoch)
    blob = hpke_seal(recipient.x_public, info, plain)
    header = SkdHeader(room_id, identity.member_id, recipient.member_id, epoch, key_id)
    return assemble_skd(identity, header, blob)


def parse_skd(raw: bytes) -> SkdHeader:
    """Structural checks only: version, type, exact length, declared blob length."""
    if len(raw) < 2:
        raise E2EEError("malformed", "SKD too short")
    if raw[0] != VERSION:
        raise E2EEError("unknown_version")
    if raw[1] != SKD_TYPE:
        raise E2EEError("malformed", "not an SKD (type byte)")
    if len(raw) != SKD_LEN:
        raise E2EEError("bad_length", f"SKD must be {SKD_LEN} bytes")
    _, _, room_id, sender_id, recipient_id, epoch, key_id, blob_len = _OUTER.unpack_from(raw)
    if blob_len != SKD_BLOB_LEN:
        raise E2EEError("bad_length", "declared blob length")
    return SkdHeader(room_id, sender_id, recipient_id, epoch, key_id)


def verify_skd(raw: bytes, sender_card: KeyCard) -> SkdHeader:
    """Parse and verify the outer signature against the sender's card (server and client)."""
    h = parse_skd(raw)
    if not ct_eq(h.sender_id, sender_card.member_id):
        raise E2EEError("wrong_sender", "SKD sender is not the card's member")
    if not ct_eq(h.room_id, sender_card.room_id):
        raise E2EEError("wrong_room", "SKD and card rooms differ")
    signed, sig = raw[:-SIG_LEN], raw[-SIG_LEN:]
    if not ed25519_verify(sender_card.ed_public, sig, ds("skd-sig") + signed):
        raise E2EEError("bad_signature", "SKD signature")
    return h


def open_skd(identity: Identity, raw: bytes, sender_card: KeyCard) -> SkdContent:
    """Verify, check addressing, open the HPKE blob and match inner against outer."""
    h = verify_skd(raw, sender_card)
    if not ct_eq(h.recipient_id, identity.member_id):
        raise E2EEError("wrong_recipient", "SKD is for another member")
    blob = raw[SKD_HEADER_LEN : SKD_HEADER_LEN + SKD_BLOB_LEN]
    info = skd_info(h.room_id, h.sender_id, h.recipient_id, h.epoch)
    plain = hpke_open(identity.x_private, info, blob)
    if len(plain) != SKD_PLAIN_LEN:
        raise E2EEError("skd_mismatch", "inner plaintext length")
    version, room_id, sender_id, epoch, key_id, start_index, chain_key = _INNER.unpack(plain)
    if version != VERSION:
        raise E2EEError("unknown_version", "inner SKD version")
    if not (
        ct_eq(room_id, h.room_id)
        and ct_eq(sender_id, h.sender_id)
        and epoch == h.epoch
        and key_id == h.key_id
    ):
        raise E2EEError("skd_mismatch", "inner fields differ from the signed header")
    return SkdContent(h, start_index, chain_key)
