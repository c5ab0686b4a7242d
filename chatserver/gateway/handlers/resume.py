"""Handlers for room.resume and room.catchup: a seat taken back after a reconnect, and the pages
of the recovery buffer it missed."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import msgpack

from chatserver import e2ee
from chatserver.gateway import seat_proofs, seats
from chatserver.gateway.common import rate_limit, seat_of
from chatserver.gateway.state import Connection, Seat
from chatserver.node import Node
from chatserver.protocol import (
    ErrorCode,
    ProtocolError,
    RoomCatchup,
    RoomResume,
    ok,
)
from chatserver.protocol.ids import unb64id
from chatserver.protocol.views import member_view, room_view
from rooms.errors import RefusalCode


async def room_resume(node: Node, conn: Connection, p: RoomResume) -> dict[str, Any]:
    rate_limit(conn.join_bucket.take(node.clock.now()), "joins")
    held = conn.seats.get(p.room_id)
    if held is not None and held.member_id != p.member_id:
        raise ProtocolError("already_member", "This connection is already in the room.")
    snapshot = await node.service.snapshot(p.room_id)
    member = snapshot[0].member(p.member_id) if snapshot else None
    token_hash = hashlib.sha256(p.token).digest()
    nonce = seat_proofs.take_nonce(conn, p.room_id, node.clock.now())
    if snapshot is None or member is None or not hmac.compare_digest(member.token_hash, token_hash):
        node.stats.resumes["failed"] += 1
        raise ProtocolError(ErrorCode.RESUME_FAILED, "This seat cannot be resumed; join again.")
    card = e2ee.parse_card(member.card, unb64id(p.room_id))
    # The token is a bearer secret that a page keeps in storage; the seat is the card's key.
    seat_proofs.require_seat_proof(card, unb64id(p.room_id), nonce, p.seat_proof)
    if node.registry.seat(p.room_id, p.member_id) is not None:
        # A half-dead connection of this node still holds the seat (or this one does: its last
        # resume was answered `unavailable` after taking it): the newer resume takes it.
        await seats.detach(node, p.room_id, p.member_id, keep_subscription=True)
    await seats.hold(node, p.room_id, p.member_id)
    try:
        await seats.attach(node, conn, Seat(p.room_id, p.member_id, card, sid=conn.sid))
        snapshot = await node.service.snapshot(p.room_id)
        if snapshot is None:
            raise ProtocolError(RefusalCode.room_not_found, "The room has ended.")
        room, seq = snapshot
        events = await _page(node, p.room_id, p.last_seq)
        keys = await node.bus.mailbox(p.room_id, p.member_id)
    except BaseException:
        # Refused (e.g. `unavailable`: the backend is briefly unreachable): the seat is not taken
        # here, so the client's next resume (on any connection) finds it as it was.
        await seats.detach(node, p.room_id, p.member_id)
        raise
    node.registry.known[p.room_id] = room
    node.stats.resumes["gap" if events is None else "ok"] += 1
    return ok(
        room=room_view(room),
        you={**member_view(member), "token": p.token},
        members=[member_view(m) for m in room.members],
        seq=seq,
        gap=events is None,
        events=events or [],
        # The seat was attached before the snapshot: what comes after `seq` arrives as pushes.
        more=_ends_before(events, seq),
        keys=[_strip(e) for e in keys],
    )


async def room_catchup(node: Node, conn: Connection, p: RoomCatchup) -> dict[str, Any]:
    """The next page of the recovery buffer after `after_seq`, for a seat resumed with `more`."""
    seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now()), "requests")
    events = await _page(node, p.room_id, p.after_seq)
    last = await node.bus.last_seq(p.room_id) if events else 0
    return ok(events=events or [], more=_ends_before(events, last), gap=events is None)


async def _page(node: Node, room_id: str, after_seq: int) -> list[dict[str, Any]] | None:
    """The next page of buffered events after `after_seq` as a reply carries them, or None for a
    gap. At most `resume_page_events` events of at most `resume_page_bytes` encoded bytes, except
    that the first always goes: a page exceeds the byte bound by one event at most (an event is
    at most a frame), and a reply never grows with everything that was missed."""
    s = node.settings
    max_events, max_bytes = max(s.resume_page_events, 1), max(s.resume_page_bytes, 1)
    events = await node.bus.since(room_id, after_seq, max_events=max_events, max_bytes=max_bytes)
    if events is None:
        return None
    # The bus measured what it stores; the bound is on what goes out (`event` for `t`, `seq`).
    page: list[dict[str, Any]] = []
    total = 0
    for event in events:
        stripped = _strip(event)
        size = len(msgpack.packb(stripped, use_bin_type=True))
        if page and total + size > max_bytes:
            break
        page.append(stripped)
        total += size
    return page


def _ends_before(page: list[dict[str, Any]] | None, seq: int) -> bool:
    """`more`: the page stops short of `seq`, so buffered events follow it."""
    return page is not None and len(page) > 0 and int(page[-1]["seq"]) < seq


def _strip(event: dict[str, Any]) -> dict[str, Any]:
    return {"event": event["t"], **{k: v for k, v in event.items() if k != "t"}}
