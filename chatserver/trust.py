"""What a client believes about a room, and why: only what a key it already trusts signed.

The server's views and push labels are hints. The sender of a message is the envelope's signed
sender; a private room's host seat and lobby flag are its link-signed charter; a card counts for
the member id it derives. The Python client uses these; web/src/client.ts mirrors them.
"""

from __future__ import annotations

from typing import Any

from chatserver import e2ee
from chatserver.e2ee.charter import open_charter
from chatserver.links import RoomLink
from chatserver.protocol.ids import b64id


def room_authority(link: RoomLink, view: dict[str, Any]) -> tuple[str | None, bool]:
    """The room's host seat and lobby flag: from the link-signed charter in a private room (the
    server cannot forge it), from the server's view in a listed one (nothing else to go by).
    Raises E2EEError when a private room's charter is missing or forged."""
    secret = link.secret
    if secret is None:
        host_id = view.get("host_id")
        return (str(host_id) if host_id is not None else None), bool(view.get("lobby"))
    charter = open_charter(secret.join_public, secret.room_id, view.get("charter"))
    host = b64id(charter.host_id) if charter.host_id is not None else None
    return host, charter.lobby


def card_derives(card: Any, member_id: str, room_key: bytes | None = None) -> bool:
    """Does this card's key pair derive `member_id` (its self-signature verifying, and the card
    bound to `room_key` when given)? A view's id counts only for the card that derives it."""
    if not isinstance(card, bytes):
        return False
    try:
        return b64id(e2ee.parse_card(card, room_key).member_id) == member_id
    except e2ee.E2EEError:
        return False


def signed_sender(env: Any, claimed: Any) -> str | None:
    """The envelope's signed sender when the push's `from` names the same member, else None.

    `from` is the server's word; the sender id in the envelope header is what the signature
    (checked by `RoomCrypto.decrypt` against that member's card) covers. A push whose label
    differs is a relabelling by a server or a Redis writer and is dropped."""
    if not isinstance(env, bytes):
        return None
    try:
        sender = b64id(e2ee.parse_envelope(env).sender_id)
    except e2ee.E2EEError:
        return None
    return sender if sender == claimed else None
