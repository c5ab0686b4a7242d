"""Room links: what a member shares (or keeps) to get into a room.

Forms (``SERVER_URL`` may carry a path prefix, e.g. ``https://host/chat``):

- listed room: ``SERVER_URL/r/ROOM_ID``
- private room: ``SERVER_URL/r#SECRET`` where SECRET is the unpadded base64url of the 32-byte
  room secret; the room id, join key and meta key all derive from it (``e2ee.derive_room_secret``).
- host links of session rooms add the host's 64-byte identity seed (Ed25519 seed 32 ‖ X25519 seed
  32, unpadded base64url): ``SERVER_URL/r#SECRET.HOSTSEED`` (private) or
  ``SERVER_URL/r/ROOM_ID#HOSTSEED`` (listed). Whoever holds a host link takes the host seat.

Everything after ``#`` is a fragment: browsers never send it to the server. ``repr`` of a
:class:`RoomLink` never shows a secret.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

from chatserver import e2ee
from chatserver.protocol.ids import b64id, unb64id

SECRET_LEN = 32
HOST_SEED_LEN = 64
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
_B64_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class LinkError(ValueError):
    """A link that is not a chatserver room link; the message says what is wrong (never the secret)."""


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str, length: int, what: str) -> bytes:
    """Decode unpadded base64url of exactly `length` bytes, or raise LinkError naming `what`."""
    if not _B64_RE.match(text):
        raise LinkError(f"the {what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise LinkError(f"the {what} is not base64url") from None
    if len(raw) != length or b64(raw) != text:
        raise LinkError(f"the {what} must encode exactly {length} bytes")
    return raw


@dataclass(frozen=True)
class RoomLink:
    """A parsed room link.

    `room_id` is the wire id (22 characters). `secret` is set for private rooms. `host_seed` (and
    so `host_identity`) only for host links of session rooms.
    """

    server_url: str
    room_id: str
    secret: e2ee.RoomSecret | None = field(default=None, repr=False)
    host_seed: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not _ID_RE.match(self.room_id):
            raise LinkError("the room id must be 22 base64url characters")
        if self.secret is not None and b64id(self.secret.room_id) != self.room_id:
            raise LinkError("the room id does not match the room secret")
        if self.host_seed is not None and len(self.host_seed) != HOST_SEED_LEN:
            raise LinkError(f"the host seed must be {HOST_SEED_LEN} bytes")

    @property
    def private(self) -> bool:
        return self.secret is not None

    @cached_property
    def host_identity(self) -> e2ee.Identity | None:
        """The host's per-room identity rebuilt from the seed, for host links."""
        if self.host_seed is None:
            return None
        return e2ee.Identity.from_seeds(self.host_seed[:32], self.host_seed[32:])

    def without_host(self) -> RoomLink:
        """The link to hand to participants: the same room without the host seat."""
        return RoomLink(self.server_url, self.room_id, self.secret)

    def __str__(self) -> str:
        return format_link(self)


def _normalise_server(server_url: str) -> str:
    parts = urlsplit(server_url.strip())
    if parts.scheme not in ("http", "https"):
        raise LinkError("the server URL must start with http:// or https://")
    if not parts.hostname:
        raise LinkError("the server URL has no host")
    if parts.query or parts.fragment:
        raise LinkError("the server URL must not have a query or fragment")
    try:
        _ = parts.port
    except ValueError:
        raise LinkError("the server URL has an invalid port") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def server_url(text: str) -> str:
    """Validate and normalise a server URL (no trailing slash)."""
    return _normalise_server(text)


def format_link(link: RoomLink) -> str:
    """The text form of a link (see the module docstring)."""
    base = link.server_url.rstrip("/")
    host = b64(link.host_seed) if link.host_seed is not None else None
    if link.secret is not None:
        fragment = b64(link.secret.secret) + (f".{host}" if host else "")
        return f"{base}/r#{fragment}"
    return f"{base}/r/{link.room_id}" + (f"#{host}" if host else "")


def private_link(server: str, secret: e2ee.RoomSecret, host_seed: bytes | None = None) -> RoomLink:
    return RoomLink(_normalise_server(server), b64id(secret.room_id), secret, host_seed)


def listed_link(server: str, room_id: str, host_seed: bytes | None = None) -> RoomLink:
    return RoomLink(_normalise_server(server), room_id, None, host_seed)


def parse_link(text: str) -> RoomLink:
    """Parse a room link, or raise LinkError saying what is wrong with it."""
    text = text.strip()
    if not text:
        raise LinkError("the link is empty")
    base, hash_sign, fragment = text.partition("#")
    if hash_sign and not fragment:
        raise LinkError("the link ends with an empty fragment")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https"):
        raise LinkError("a room link must start with http:// or https://")
    if parts.query:
        raise LinkError("a room link has no query string")
    path = parts.path
    match = re.match(r"^(?P<prefix>.*)/r(?:/(?P<room>[^/]*))?/?$", path)
    if match is None:
        raise LinkError("a room link looks like SERVER/r/ROOM_ID or SERVER/r#SECRET")
    server = _normalise_server(f"{parts.scheme}://{parts.netloc}{match['prefix']}")
    room = match["room"]
    if room:
        if not _ID_RE.match(room):
            raise LinkError("the room id must be 22 base64url characters")
        seed = unb64(fragment, HOST_SEED_LEN, "host seed") if fragment else None
        return RoomLink(server, room, None, seed)
    if not fragment:
        raise LinkError("a private room link needs its secret after '#'")
    secret_text, dot, seed_text = fragment.partition(".")
    if dot and not seed_text:
        raise LinkError("the host seed after '.' is empty")
    raw = unb64(secret_text, SECRET_LEN, "room secret")
    seed = unb64(seed_text, HOST_SEED_LEN, "host seed") if seed_text else None
    secret = e2ee.derive_room_secret(raw)
    return RoomLink(server, b64id(secret.room_id), secret, seed)


def room_key(link: RoomLink) -> bytes:
    """The 16 raw room-id bytes the E2EE layer binds everything to."""
    return unb64id(link.room_id)


__all__ = [
    "HOST_SEED_LEN",
    "LinkError",
    "RoomLink",
    "format_link",
    "listed_link",
    "parse_link",
    "private_link",
    "room_key",
    "server_url",
]
