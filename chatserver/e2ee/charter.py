"""A private room's charter: who holds the host seat and whether it has a lobby, signed with the
link key, so that clients take both from the link, not from the server's room view.

    charter = 0x01 || host_id(16) || u8 flags || Ed25519(join_seed, DS("charter") || room_id
              || 0x01 || host_id || flags)

`flags` bit 0: the room has a lobby; bit 1: `host_id` names a host seat (otherwise it is zeros).
The creator signs it at `room.create` / `session.create`; the server keeps it and hands it out in
the room and lobby views; every client of the room checks it with the `join_public` its own link
derives. The server lacks the link key, so it can neither name another host nor drop the lobby.
(A link holder could sign a charter too, but the server keeps the creator's, checked at creation.)
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import ID_LEN, SIG_LEN, ds
from .errors import E2EEError
from .primitives import ed25519_keypair, ed25519_verify
from .room_secret import RoomSecret, join_seed

CHARTER_VERSION = 1
CHARTER_LEN = 1 + ID_LEN + 1 + SIG_LEN  # 82
LOBBY = 0x01
HAS_HOST = 0x02


@dataclass(frozen=True)
class Charter:
    host_id: bytes | None  # None: a room without a host seat
    lobby: bool


def charter_message(room_id: bytes, body: bytes) -> bytes:
    """The bytes the link key signs: DS("charter") || room_id || version || host_id || flags."""
    return ds("charter") + room_id + body


def make_charter(secret: RoomSecret, host_id: bytes | None, lobby: bool) -> bytes:
    if host_id is not None and len(host_id) != ID_LEN:
        raise E2EEError("bad_length", "host ids are 16 bytes")
    flags = (LOBBY if lobby else 0) | (HAS_HOST if host_id is not None else 0)
    body = bytes([CHARTER_VERSION]) + (host_id or bytes(ID_LEN)) + bytes([flags])
    key, _ = ed25519_keypair(join_seed(secret.secret))
    return body + key.sign(charter_message(secret.room_id, body))


def open_charter(join_public: bytes, room_id: bytes, charter: object) -> Charter:
    """Check a charter against the link's join key; E2EEError on anything else."""
    if not isinstance(charter, bytes) or len(charter) != CHARTER_LEN:
        raise E2EEError("bad_length", "a charter is 82 bytes")
    if charter[0] != CHARTER_VERSION:
        raise E2EEError("unknown_version", "charter version")
    body, sig = charter[: 1 + ID_LEN + 1], charter[1 + ID_LEN + 1 :]
    flags = body[-1]
    if flags & ~(LOBBY | HAS_HOST):
        raise E2EEError("malformed", "unknown charter flags")
    if not ed25519_verify(join_public, sig, charter_message(room_id, body)):
        raise E2EEError("bad_signature", "the charter is not signed with this room's link key")
    host_id = body[1 : 1 + ID_LEN]
    if not flags & HAS_HOST:
        if host_id != bytes(ID_LEN):
            raise E2EEError("malformed", "a charter without a host names none")
        return Charter(None, bool(flags & LOBBY))
    return Charter(host_id, bool(flags & LOBBY))
