"""session.create: a listed or private session hosted by a signed-in therapist, shown with the
therapist's badge, optionally with a lobby, a start time, a duration, Q&A and rules."""

from __future__ import annotations

from typing import Any

from chatserver import credentials
from chatserver.credentials import CredentialError
from chatserver.gateway import charters
from chatserver.gateway.common import rate_limit
from chatserver.gateway.handlers.therapist import signed_in
from chatserver.gateway.state import Connection
from chatserver.node import Node
from chatserver.protocol import (
    ErrorCode,
    ProtocolError,
    SessionCreate,
    ok,
)
from chatserver.protocol.ids import unb64id
from chatserver.protocol.views import room_view
from rooms import (
    CreateRoom,
    RoomKind,
    Visibility,
)
from rooms.errors import RefusalCode


async def session_create(node: Node, conn: Connection, p: SessionCreate) -> dict[str, Any]:
    rate_limit(conn.create_bucket.take(node.clock.now()), "rooms created")
    cred = await signed_in(node, conn)
    assert node.server_key is not None
    if p.room_id is None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "A session names its room_id (random 16 bytes).")
    if p.listed == (p.join_key is not None):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "A private session needs join_key; a listed one must not."
        )
    now = node.clock.now()
    try:
        badge = credentials.verify_badge(
            node.server_key.public, p.badge, unb64id(p.room_id), unb64id(p.host_id), now
        )
    except CredentialError:
        raise ProtocolError(ErrorCode.BAD_BADGE, "The badge does not verify.") from None
    if badge.cred_id != cred.cred_id:
        raise ProtocolError(ErrorCode.BAD_BADGE, "The badge is for another credential.")
    if await node.store.load(p.room_id) is not None:
        raise ProtocolError(RefusalCode.room_exists, "A room with this id already exists.")
    charters.require(p.room_id, p.join_key, p.charter, p.host_id, p.lobby)
    command = CreateRoom(
        room_id=p.room_id,
        kind=RoomKind.session,
        visibility=Visibility.listed if p.listed else Visibility.unlisted,
        topic=p.topic,
        title_ct=p.title,
        join_key=p.join_key,
        capacity=p.capacity,
        now=now,
        host_id=p.host_id,
        lobby=p.lobby,
        starts_at=p.starts_at,
        duration_s=p.duration_s,
        qa=p.qa,
        rules=p.rules,
        badge=p.badge,
        charter=p.charter,
    )
    decision, _ = await node.service.apply(p.room_id, command)
    assert decision.room is not None
    return ok(room=room_view(decision.room))
