"""Known-answer tests for the primitives exactly as the protocol calls them (tests/vectors/rfc)."""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from chatserver.e2ee.primitives import (
    aead_open,
    aead_seal,
    ed25519_keypair,
    ed25519_verify,
    hkdf_sha256,
    hmac_sha256,
)

RFC = Path(__file__).resolve().parent.parent / "vectors" / "rfc"
L = 2**252 + 27742317777372353535851937790883648493


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RFC / name).read_text())
    return data


def x(h: str) -> bytes:
    return bytes.fromhex(h)


def x25519(scalar: bytes, u: bytes) -> bytes:
    key = X25519PrivateKey.from_private_bytes(scalar)
    return key.exchange(X25519PublicKey.from_public_bytes(u))


X = load("x25519_rfc7748.json")
ED = load("ed25519_rfc8032.json")
HK = load("hkdf_sha256_rfc5869.json")
HM = load("hmac_sha256_rfc4231.json")
AE = load("chacha20_poly1305_rfc8439.json")


@pytest.mark.parametrize("t", X["scalar_mult"], ids=lambda t: t["name"])
def test_x25519_scalar_mult(t: dict[str, Any]) -> None:
    assert x25519(x(t["scalar"]), x(t["u"])).hex() == t["output"]


def test_x25519_iterated_1_and_1000() -> None:
    k = u = x(X["iterated"]["start"])
    for i in range(1000):
        k, u = x25519(k, u), k
        if i == 0:
            assert k.hex() == X["iterated"]["after_1"]
    assert k.hex() == X["iterated"]["after_1000"]


def test_x25519_dh_6_1() -> None:
    v = X["dh_6_1"]
    a = X25519PrivateKey.from_private_bytes(x(v["alice_private"]))
    b = X25519PrivateKey.from_private_bytes(x(v["bob_private"]))
    assert a.public_key().public_bytes_raw().hex() == v["alice_public"]
    assert b.public_key().public_bytes_raw().hex() == v["bob_public"]
    assert a.exchange(b.public_key()).hex() == v["shared"]
    assert b.exchange(a.public_key()).hex() == v["shared"]


@pytest.mark.parametrize("t", ED["tests"], ids=lambda t: t["name"])
def test_ed25519_rfc8032(t: dict[str, Any]) -> None:
    key, pub = ed25519_keypair(x(t["secret"]))
    msg = x(t["message"])
    assert pub.hex() == t["public"]
    assert key.sign(msg).hex() == t["signature"]
    assert ed25519_verify(pub, x(t["signature"]), msg)
    assert not ed25519_verify(pub, x(t["signature"]), msg + b"\x00")


@pytest.mark.parametrize("t", ED["tests"], ids=lambda t: t["name"])
def test_ed25519_rejects_non_canonical_s(t: dict[str, Any]) -> None:
    """Strict RFC 8032: S + L is the same scalar mod L but must be rejected (malleability)."""
    sig = x(t["signature"])
    s = int.from_bytes(sig[32:], "little")
    forged = sig[:32] + (s + L).to_bytes(32, "little")
    assert not ed25519_verify(x(t["public"]), forged, x(t["message"]))


@pytest.mark.parametrize("t", HK["tests"], ids=lambda t: t["name"])
def test_hkdf_sha256(t: dict[str, Any]) -> None:
    salt = x(t["salt"])
    assert hkdf_sha256(x(t["ikm"]), salt, x(t["info"]), t["length"]).hex() == t["okm"]
    assert hmac_sha256(salt or bytes(32), x(t["ikm"])).hex() == t["prk"]


@pytest.mark.parametrize("t", HM["tests"], ids=lambda t: t["name"])
def test_hmac_sha256(t: dict[str, Any]) -> None:
    mac = hmac_sha256(x(t["key"]), x(t["data"]))[: t.get("truncate", 32)]
    assert hmac.compare_digest(mac, x(t["mac"]))


@pytest.mark.parametrize("t", AE["tests"], ids=lambda t: t["name"])
def test_chacha20_poly1305(t: dict[str, Any]) -> None:
    key, nonce, aad, pt = x(t["key"]), x(t["nonce"]), x(t["aad"]), x(t["plaintext"])
    sealed = aead_seal(key, nonce, pt, aad)
    assert sealed.hex() == t["ciphertext"] + t["tag"]
    assert aead_open(key, nonce, sealed, aad) == pt
