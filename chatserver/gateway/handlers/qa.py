"""qa.ask: a sealed question for one host of the room, sent as a directed push."""

from __future__ import annotations

from typing import Any

from chatserver.gateway.common import load_room, rate_limit, seat_of
from chatserver.gateway.state import Connection
from chatserver.node import Node
from chatserver.protocol import (
    ErrorCode,
    ProtocolError,
    QaAsk,
    ok,
)
from chatserver.protocol.pushes import QaQuestionPush, to_wire
from rooms import (
    Role,
)


async def qa_ask(node: Node, conn: Connection, p: QaAsk) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.msg_bucket.take(node.clock.now()), "questions")
    room = await load_room(node, p.room_id)
    if room.member(seat.member_id) is None:
        raise ProtocolError(ErrorCode.NOT_IN_ROOM, "Not a member of this room.")
    host = room.member(p.to)
    if host is None or host.role is not Role.host:
        raise ProtocolError(ErrorCode.UNKNOWN_RECIPIENT, "Questions go to a host of the room.")
    event = to_wire(QaQuestionPush(room_id=p.room_id, sender=seat.member_id, sealed=p.sealed))
    await node.bus.send_direct(p.room_id, p.to, event)
    return ok()
