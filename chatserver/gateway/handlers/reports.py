"""report.send and report.review: a reported message's franking is verified here (so a report
cannot be forged), counted by address group, and shown to the room's staff."""

from __future__ import annotations

import hashlib
from typing import Any

from chatserver import e2ee
from chatserver.gateway.common import load_room, rate_limit, seat_of, tell_staff
from chatserver.gateway.state import Connection
from chatserver.node import Node
from chatserver.protocol import (
    ErrorCode,
    ProtocolError,
    ReportReview,
    ReportSend,
    ok,
)
from chatserver.protocol.ids import b64id, unb64id
from chatserver.protocol.pushes import ReportPush
from rooms import (
    Report,
    Review,
)


def report_reasons(node: Node) -> list[str]:
    return [r.strip() for r in node.settings.report_reasons.split(",") if r.strip()]


async def report_send(node: Node, conn: Connection, p: ReportSend) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now(), cost=2), "reports")
    if p.reason not in report_reasons(node):
        raise ProtocolError(ErrorCode.UNKNOWN_REASON, "Pick a reason from the server's list.")
    try:
        claimed = e2ee.parse_envelope(p.env)
    except e2ee.E2EEError:
        raise ProtocolError(ErrorCode.BAD_REPORT, "The report does not verify.") from None
    if claimed.room_id != unb64id(p.room_id):
        raise ProtocolError(ErrorCode.WRONG_ROOM, "The reported message is from another room.")
    current = await load_room(node, p.room_id)
    accused = current.member(b64id(claimed.sender_id))
    if accused is None:
        raise ProtocolError(
            ErrorCode.BAD_REPORT, "The sender has left: the message cannot be verified."
        )
    try:
        card = e2ee.parse_card(accused.card, claimed.room_id)
        e2ee.verify_report(node.stamp_key, p.env, p.ts, p.stamp, p.franking_key, p.body, card)
    except e2ee.E2EEError:
        raise ProtocolError(ErrorCode.BAD_REPORT, "The report does not verify.") from None
    digest = hashlib.sha256(p.env).digest()
    # One person with several seats reports as one: reporters count by address group.
    group = node.abuse.report_group(conn.sid, p.room_id)
    decision, _ = await node.service.apply(
        p.room_id, Report(seat.member_id, digest, node.clock.now(), group=group)
    )
    room = decision.room
    assert room is not None
    flag = room.flag(digest)
    sender_id = b64id(claimed.sender_id)
    sender = room.member(sender_id)
    report = {
        "digest": digest,
        "reason": p.reason,
        "sender_id": sender_id,
        "sender_pseudonym": sender.pseudonym if sender is not None else None,
        "body": p.body,
        "ts": p.ts,
        "reporters": len(flag.reporters) if flag else 1,
        "reporter_groups": len(flag.groups) if flag else 1,
        "hidden": bool(flag and flag.hidden),
    }
    await tell_staff(node, room, ReportPush(room_id=room.room_id, report=report))
    return ok(reporters=report["reporters"], hidden=report["hidden"])


async def report_review(node: Node, conn: Connection, p: ReportReview) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now()), "reviews")
    _, seq = await node.service.apply(
        p.room_id, Review(seat.member_id, p.digest, p.hide, node.clock.now())
    )
    return ok(seq=seq)
