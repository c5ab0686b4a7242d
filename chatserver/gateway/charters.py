"""A private room's charter, checked once at creation (chatserver/e2ee/charter.py).

Clients take the host seat and the lobby flag of a private room from its charter, signed with
the link key, not from the server's view. The server checks at creation that the charter is
signed with the room's join key and says what the request says, so that an honest creator's
room never carries a charter its members would refuse, and keeps the first one for good.
"""

from __future__ import annotations

from chatserver import e2ee
from chatserver.e2ee.charter import open_charter
from chatserver.protocol import ErrorCode, ProtocolError
from chatserver.protocol.ids import unb64id


def require(
    room_id: str, join_key: bytes | None, charter: bytes | None, host_id: str | None, lobby: bool
) -> None:
    """Private rooms (a join key): the charter must verify and match `host_id` and `lobby`."""
    if join_key is None:
        if charter is not None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "A listed room takes no charter.")
        return
    try:
        opened = open_charter(join_key, unb64id(room_id), charter)
    except e2ee.E2EEError:
        raise ProtocolError(ErrorCode.BAD_CHARTER, "The charter does not verify.") from None
    wanted = unb64id(host_id) if host_id is not None else None
    if opened.host_id != wanted or opened.lobby != lobby:
        raise ProtocolError(ErrorCode.BAD_CHARTER, "The charter names another host or lobby.")
