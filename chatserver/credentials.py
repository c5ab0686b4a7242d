"""Verified therapists without an accounts table: the server key, credentials, badges, admissions.

The **server key** is one Ed25519 seed (32 bytes) in a file the operator provides or that the
first run creates (mode 0600, never logged); every node of a cluster must load the same file. From
it come the credential-signing key (its public half is published at
`/.well-known/chatserver-therapists.json`) and, by HKDF under a separate label, the franking
stamp key, so every node verifies every other node's stamps.

A **credential** binds a therapist's own Ed25519 public key to a display name, an id and an
expiry, signed by the server key. `chatserver therapist issue` makes the therapist's key pair, and
prints once a token `cst1.<certificate>.<therapist seed>`; the therapist pastes it into the web
console, which keeps it in that browser only. Signing in proves possession of the seed (a
signature over a server nonce), so the certificate alone (which participants see, inside the
badge) signs nobody in. The server stores no credential: revocation is a shared list of ids.

A **badge** is the certificate plus the therapist's signature binding it to one room and one host
seat; members verify it against the published key themselves. An **admission** is the host's
signature (with their per-room card key) over a waiter's card, so members share keys only with
people a host admitted.

Addresses have their own module (`chatserver/addresses.py`): their keys derive from this key too.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chatserver.e2ee.constants import ds
from chatserver.e2ee.primitives import ed25519_verify, hkdf_sha256, u32, u64

if TYPE_CHECKING:
    from chatserver.config import Settings

CREDENTIAL_VERSION = 1
CRED_ID_LEN = 16
SEED_LEN = 32
SIG_LEN = 64
MAX_NAME_BYTES = 64
TOKEN_PREFIX = "cst1"  # noqa: S105 - a format tag, not a secret
REVOKED = "revoked"  # Denylist name shared by every node
DAY_S = 86400

_STAMP_INFO = b"chatserver/v1 franking stamp key"


class CredentialError(Exception):
    """A credential that does not verify: `code` is malformed, tampered, expired or revoked."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise CredentialError("malformed", "not base64url") from exc


# --- the server key -------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerKey:
    """The server's Ed25519 seed, its public key, and the stamp key derived from it."""

    seed: bytes = field(repr=False)

    @property
    def private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes_raw()

    @property
    def stamp_key(self) -> bytes:
        return hkdf_sha256(self.seed, None, _STAMP_INFO, 32)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def __repr__(self) -> str:
        return "ServerKey(<hidden>)"


def default_key_path(state_dir: str = "") -> Path:
    """`<state_dir>/server.key`; the state directory defaults to `$XDG_STATE_HOME/chatserver`."""
    if state_dir:
        return Path(state_dir) / "server.key"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "chatserver" / "server.key"


def key_path(settings: Settings) -> Path:
    """Where this node's server key lives (`key_file`, else `<state_dir>/server.key`)."""
    return Path(settings.key_file) if settings.key_file else default_key_path(settings.state_dir)


def revocation_path(settings: Settings) -> Path:
    """The local revocation file next to the server key (the embedded, single-node list)."""
    return key_path(settings).with_name("revoked")


def load_server_key(path: Path, *, create: bool = True) -> ServerKey:
    """Read the seed (base64url text or 32 raw bytes); create it (0600, atomically) if missing.

    Two nodes starting at once on a shared volume agree: the file is written under a temporary
    name and linked into place, so whoever links first wins and the other reads that seed.
    """
    try:
        return _parse_key(path.read_bytes())
    except FileNotFoundError:
        if not create:
            raise
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    seed = secrets.token_bytes(SEED_LEN)
    fd, tmp = tempfile.mkstemp(prefix=".server.key.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (b64(seed) + "\n").encode())
        os.fsync(fd)
        os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return _parse_key(path.read_bytes())


def _parse_key(raw: bytes) -> ServerKey:
    if len(raw) == SEED_LEN:
        return ServerKey(raw)
    seed = unb64(raw.decode("ascii", errors="replace").strip())
    if len(seed) != SEED_LEN:
        raise CredentialError("malformed", "the server key file must hold a 32-byte seed")
    return ServerKey(seed)


# --- credentials ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """A verified certificate: who, until when, and the therapist's public key."""

    cred_id: str  # 32 hex characters
    name: str
    issued_at: int
    expires_at: int
    public_key: bytes
    cert: bytes = field(repr=False)


def _cert_body(cred_id: bytes, issued: int, expires: int, public: bytes, name: str) -> bytes:
    raw_name = name.encode("utf-8")
    if not 0 < len(raw_name) <= MAX_NAME_BYTES:
        raise CredentialError("malformed", f"the name must be 1 to {MAX_NAME_BYTES} UTF-8 bytes")
    return (
        bytes([CREDENTIAL_VERSION])
        + cred_id
        + u64(issued)
        + u64(expires)
        + public
        + bytes([len(raw_name)])
        + raw_name
    )


def issue(key: ServerKey, name: str, days: float, now: float) -> tuple[str, Credential]:
    """A new credential: (the one-time token for the therapist, the parsed credential)."""
    if not 0 < days <= 3660:
        raise CredentialError("malformed", "days must be between 0 and 3660")
    name = " ".join(name.split())
    cred_id = secrets.token_bytes(CRED_ID_LEN)
    seed = secrets.token_bytes(SEED_LEN)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    issued = int(now)
    body = _cert_body(cred_id, issued, int(now + days * DAY_S), public, name)
    cert = body + key.sign(ds("therapist-cert") + body)
    token = f"{TOKEN_PREFIX}.{b64(cert)}.{b64(seed)}"
    return token, parse_cert(cert)


def parse_cert(cert: bytes) -> Credential:
    """Layout only (no signature check)."""
    fixed = 1 + CRED_ID_LEN + 8 + 8 + 32 + 1
    if len(cert) < fixed + 1 + SIG_LEN or cert[0] != CREDENTIAL_VERSION:
        raise CredentialError("malformed", "not a chatserver therapist credential")
    o = 1
    cred_id = cert[o : o + CRED_ID_LEN]
    o += CRED_ID_LEN
    issued = int.from_bytes(cert[o : o + 8], "big")
    expires = int.from_bytes(cert[o + 8 : o + 16], "big")
    o += 16
    public = cert[o : o + 32]
    o += 32
    name_len = cert[o]
    o += 1
    if len(cert) != o + name_len + SIG_LEN:
        raise CredentialError("malformed", "the credential has the wrong length")
    try:
        name = cert[o : o + name_len].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CredentialError("malformed", "the name is not UTF-8") from exc
    return Credential(cred_id.hex(), name, issued, expires, public, bytes(cert))


def verify_cert(server_public: bytes, cert: bytes, now: float) -> Credential:
    """Signature, then expiry. Revocation is checked by the caller (it needs the shared list)."""
    cred = parse_cert(cert)
    body, sig = cert[:-SIG_LEN], cert[-SIG_LEN:]
    if not ed25519_verify(server_public, sig, ds("therapist-cert") + body):
        raise CredentialError("tampered", "the credential's signature does not verify")
    if now >= cred.expires_at:
        raise CredentialError("expired", "the credential has expired")
    return cred


def split_token(token: str) -> tuple[bytes, bytes]:
    """`cst1.<cert>.<seed>` -> (cert, seed)."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise CredentialError("malformed", "a credential token looks like cst1.<...>.<...>")
    cert, seed = unb64(parts[1]), unb64(parts[2])
    if len(seed) != SEED_LEN:
        raise CredentialError("malformed", "the token's key is not 32 bytes")
    return cert, seed


def signin_message(nonce: bytes) -> bytes:
    return ds("therapist-signin") + nonce


def sign_in(seed: bytes, nonce: bytes) -> bytes:
    """The therapist's proof of possession for a server nonce."""
    return Ed25519PrivateKey.from_private_bytes(seed).sign(signin_message(nonce))


def verify_signin(cred: Credential, nonce: bytes, sig: bytes) -> bool:
    return ed25519_verify(cred.public_key, sig, signin_message(nonce))


# --- badges and admissions ------------------------------------------------------------------


def badge_message(room_id: bytes, host_id: bytes) -> bytes:
    return ds("therapist-badge") + room_id + host_id


def make_badge(cert: bytes, seed: bytes, room_id: bytes, host_id: bytes) -> bytes:
    """`u16 cert_len ‖ cert ‖ Ed25519(therapist, DS("therapist-badge") ‖ room_id ‖ host_id)`."""
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(badge_message(room_id, host_id))
    return len(cert).to_bytes(2, "big") + cert + sig


def verify_badge(
    server_public: bytes, badge: bytes, room_id: bytes, host_id: bytes, now: float
) -> Credential:
    """What a member's client checks before showing "verified": the server signed the
    credential, it is current, and the therapist bound it to this room's host seat."""
    if len(badge) < 2:
        raise CredentialError("malformed", "badge too short")
    n = int.from_bytes(badge[:2], "big")
    cert, sig = badge[2 : 2 + n], badge[2 + n :]
    if len(sig) != SIG_LEN:
        raise CredentialError("malformed", "badge has the wrong length")
    cred = verify_cert(server_public, cert, now)
    if not ed25519_verify(cred.public_key, sig, badge_message(room_id, host_id)):
        raise CredentialError("tampered", "the badge is not bound to this room's host")
    return cred


def admission_message(room_id: bytes, epoch: int, card: bytes) -> bytes:
    return ds("admit") + room_id + u32(epoch) + card


def verify_admission(host_ed_public: bytes, admission: bytes, room_id: bytes, card: bytes) -> bool:
    """`admission = u32 epoch ‖ Ed25519(host card key, DS("admit") ‖ room_id ‖ u32 epoch ‖ card)`."""
    if len(admission) != 4 + SIG_LEN:
        return False
    epoch = int.from_bytes(admission[:4], "big")
    return ed25519_verify(host_ed_public, admission[4:], admission_message(room_id, epoch, card))


# --- revocation and address hashing ---------------------------------------------------------


Contains = Callable[[str, str, float], Awaitable[bool]]


def read_revoked_file(path: Path) -> set[str]:
    """Ids in the local revocation file (one hex id a line; `#` comments)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    return {line.split("#", 1)[0].strip() for line in text.splitlines()} - {""}


def append_revoked_file(path: Path, cred_id: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path, "a", encoding="utf-8") as f:
        f.write(cred_id + "\n")


class RevocationFile:
    """The embedded (single-node) revocation list: a file the CLI appends to, re-read on change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._ids: set[str] = set()

    def contains(self, cred_id: str) -> bool:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return False
        if mtime != self._mtime:
            self._ids = read_revoked_file(self.path)
            self._mtime = mtime
        return cred_id in self._ids
