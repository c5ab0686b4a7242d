"""Thin, typed wrappers around ``cryptography``: the only place primitives are called.

Keeping every primitive call here means the rest of the package reads as
protocol logic, and the known-answer tests can target exactly the functions
the protocol uses. Nothing here is hand-written cryptography.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import E2EEError

Rng = Callable[[int], bytes]
"""Source of random bytes; injectable so that test vectors are reproducible."""

default_rng: Rng = os.urandom

_HPKE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def random_bytes(rng: Rng, n: int) -> bytes:
    """Draw ``n`` bytes and insist the injected source returned exactly that many."""
    out = rng(n)
    if len(out) != n:
        raise ValueError("rng returned the wrong number of bytes")
    return out


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha512(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def ct_eq(a: bytes, b: bytes) -> bool:
    """Constant-time equality (for MACs, commitments and key comparisons)."""
    return hmac.compare_digest(a, b)


def hkdf_sha256(ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA256; an empty or absent salt means HashLen zero bytes."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(ikm)


# --- Ed25519 -----------------------------------------------------------------

_P = (1 << 255) - 19

# Encodings of the eight small-order points plus the two "negative zero"
# encodings (x = 0 with the sign bit set). OpenSSL verifies under these keys
# while noble with zip215:false refuses them, so cards carrying them are
# rejected up front to keep the two implementations in agreement.
_WEAK_ED25519: frozenset[bytes] = frozenset(
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "0100000000000000000000000000000000000000000000000000000000000080",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    )
)


def ed25519_public_is_acceptable(pub: bytes) -> bool:
    """Reject small-order and non-canonical (y >= p) Ed25519 public keys."""
    if len(pub) != 32 or pub in _WEAK_ED25519:
        return False
    y = int.from_bytes(pub, "little") & ((1 << 255) - 1)
    return y < _P


def ed25519_keypair(seed: bytes) -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return key, key.public_key().public_bytes_raw()


def ed25519_verify(pub: bytes, sig: bytes, msg: bytes) -> bool:
    """RFC 8032 verification as OpenSSL applies it (S < L enforced, cofactorless)."""
    if len(pub) != 32 or len(sig) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- X25519 / HPKE -------------------------------------------------------------

_PROBE = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def x25519_keypair(seed: bytes) -> tuple[X25519PrivateKey, bytes]:
    key = X25519PrivateKey.from_private_bytes(seed)
    return key, key.public_key().public_bytes_raw()


def x25519_public_is_acceptable(pub: bytes) -> bool:
    """Small-order X25519 points give an all-zero shared secret for any clamped scalar."""
    if len(pub) != 32:
        return False
    try:
        _PROBE.exchange(X25519PublicKey.from_public_bytes(pub))
    except ValueError:
        return False
    return True


def hpke_seal(recipient_pub: bytes, info: bytes, plaintext: bytes) -> bytes:
    """RFC 9180 base mode, single shot, empty AAD: returns ``enc(32) || ct``."""
    pub = X25519PublicKey.from_public_bytes(recipient_pub)
    return _HPKE.encrypt(plaintext, pub, info=info)


def hpke_open(recipient_key: X25519PrivateKey, info: bytes, blob: bytes) -> bytes:
    try:
        return _HPKE.decrypt(blob, recipient_key, info=info)
    except (InvalidTag, ValueError) as exc:
        raise E2EEError("aead", "HPKE open failed") from exc


# --- ChaCha20-Poly1305 ---------------------------------------------------------


def aead_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def aead_open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise E2EEError("aead", "ChaCha20-Poly1305 open failed") from exc


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")
