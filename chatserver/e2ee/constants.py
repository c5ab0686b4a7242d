"""Wire constants for envelope format v1 / suite 0x01.

Every size here is part of the wire format: the browser client, the Python
client and the server must agree on them byte for byte, so they live in one
place and nothing else hard-codes them.
"""

from __future__ import annotations

from typing import Final

VERSION: Final = 1
"""Format version byte carried first in cards, SKDs, envelopes and meta blobs."""

SUITE: Final = 1
"""Cipher suite 0x01: Ed25519, X25519 HPKE, HKDF/HMAC-SHA256, ChaCha20-Poly1305."""

SKD_TYPE: Final = 2
"""Second byte of a sender-key distribution message."""

ID_LEN: Final = 16
"""Room ids and member ids are 128-bit."""

KEY_LEN: Final = 32
SALT_LEN: Final = 16
NONCE_LEN: Final = 12
TAG_LEN: Final = 16
SIG_LEN: Final = 64
HASH_LEN: Final = 32
ED_PUB_LEN: Final = 32
X_PUB_LEN: Final = 32

HEADER_LEN: Final = 130
"""Envelope header (authenticated as AEAD associated data)."""

BUCKETS: Final[tuple[int, ...]] = tuple(1 << n for n in range(8, 17))
"""Padded plaintext sizes: 256, 512, ..., 65536 bytes (powers of two)."""

MAX_PADDED: Final = BUCKETS[-1]
MAX_ENVELOPE_LEN: Final = HEADER_LEN + MAX_PADDED + TAG_LEN + SIG_LEN
MIN_ENVELOPE_LEN: Final = HEADER_LEN + BUCKETS[0] + TAG_LEN + SIG_LEN

PAYLOAD_PREFIX_LEN: Final = KEY_LEN + 1 + 8
"""k_f(32) + u8 type + u64 client_ts_ms precede the body inside the payload."""

MAX_BODY_LEN: Final = MAX_PADDED - PAYLOAD_PREFIX_LEN - 1
"""Largest body that still fits the biggest bucket with its 0x80 pad marker."""

CARD_BODY_LEN: Final = 1 + ID_LEN + ID_LEN + ED_PUB_LEN + X_PUB_LEN + 8
CARD_LEN: Final = CARD_BODY_LEN + SIG_LEN

SKD_PLAIN_LEN: Final = 1 + ID_LEN + ID_LEN + 4 + 4 + 4 + KEY_LEN
SKD_BLOB_LEN: Final = 32 + SKD_PLAIN_LEN + TAG_LEN
"""HPKE single-shot output: enc(32) || ciphertext(77) || tag(16) = 125 bytes."""
SKD_HEADER_LEN: Final = 1 + 1 + ID_LEN * 3 + 4 + 4 + 2
SKD_LEN: Final = SKD_HEADER_LEN + SKD_BLOB_LEN + SIG_LEN

# Receiver limits (per peer chain).
MAX_SKIP: Final = 1000
"""Largest forward jump a receiver derives in one step (bounds CPU per envelope)."""
MAX_SKIPPED_KEYS: Final = 256
"""Skipped message keys kept per chain; the oldest is evicted first."""
SKIPPED_KEY_TTL_MS: Final = 5 * 60 * 1000
MAX_CHAINS_PER_SENDER: Final = 5
"""Older chains of one sender kept for late messages after a rotation."""
MAX_TOMBSTONES_PER_SENDER: Final = 1024
"""Evicted or dropped chains of one sender remembered per epoch (never reinstalled)."""

# Sender rotation.
ROTATE_AFTER_MESSAGES: Final = 100
ROTATE_AFTER_MS: Final = 60 * 60 * 1000

# Safety code.
SAFETY_ITERATIONS: Final = 5200
SAFETY_DIGITS: Final = 40
SAFETY_GROUP: Final = 5

# Join proofs and metadata.
JOIN_NONCE_MIN: Final = 16
JOIN_NONCE_MAX: Final = 64
META_MAX_TEXT: Final = 1024
META_BLOCK: Final = 64

MSG_TYPE_TEXT: Final = 1

# Body profile of type-1 (text) bodies: I-JSON (RFC 7493), see docs/e2ee.md section 6.
MAX_JSON_DEPTH: Final = 16
"""Deepest nesting of objects and arrays in a type-1 body; the top-level object is depth 1."""
MAX_NUMBER_LEN: Final = 32
"""Longest number literal (characters), checked before it is converted."""
MAX_SAFE_INTEGER: Final = 2**53 - 1
"""Largest integer magnitude in a type-1 body, and the largest client_ts_ms."""

U32_MAX: Final = 0xFFFFFFFF
U64_MAX: Final = 0xFFFFFFFFFFFFFFFF


def ds(label: str) -> bytes:
    """Domain-separation tag ``"chatenv/v1 " || label || 0x00``.

    Every hash, MAC, KDF info and signature input starts with one of these so a
    value computed for one purpose can never be replayed as another.
    """
    return b"chatenv/v1 " + label.encode("ascii") + b"\x00"
