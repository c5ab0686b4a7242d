"""The lobby of a session: the front door of room.join, lobby.knock, and the staff's lobby.list,
lobby.admit and lobby.decline. A waiter is reachable by directed pushes but sees no member, key
or message until admitted."""

from __future__ import annotations

import secrets
from typing import Any

from chatserver import credentials
from chatserver.gateway import bans
from chatserver.gateway.common import load_room, prove_card, rate_limit, seat_of, tell_staff
from chatserver.gateway.state import Connection, Seat
from chatserver.node import Node
from chatserver.ports import BusUnavailable
from chatserver.protocol import (
    ErrorCode,
    LobbyAdmit,
    LobbyDecline,
    LobbyKnock,
    LobbyList,
    ProtocolError,
    Push,
    ok,
    with_rules,
)
from chatserver.protocol.ids import b64id, unb64id
from chatserver.protocol.pushes import (
    LobbyAdmittedPush,
    LobbyDeclinedPush,
    LobbyWaitingPush,
    to_wire,
)
from rooms import (
    Admit,
    Decline,
    Disconnect,
    Knock,
    Role,
    Room,
    Visibility,
    Waiter,
)


def lobby_view(room: Room) -> dict[str, Any]:
    """What a waiter may see: never members, keys or messages."""
    return {
        "room_id": room.room_id,
        "kind": str(room.kind),
        "topic": room.topic,
        "title": room.title_ct,
        "host_id": room.host_id,
        "badge": room.badge,
        "charter": room.charter,
        "starts_at": room.starts_at,
        "duration_s": room.duration_s,
        "rules": room.rules,
        "qa": room.qa,
    }


def waiter_view(waiter: Waiter, status: str) -> dict[str, Any]:
    return {
        "member_id": waiter.member_id,
        "pseudonym": waiter.pseudonym,
        "card": waiter.card,
        "knocked_at": waiter.knocked_at,
        "status": status,
    }


async def before_join(
    node: Node, conn: Connection, room: Room, member_id: str, proof_ok: bool | None
) -> None:
    """Called by room.join before the seat is taken: room bans, and the lobby's front door."""
    if room.visibility is Visibility.unlisted and not proof_ok:
        return  # the core refuses first, telling a caller without the link nothing else
    if room.member(member_id) is not None:
        # Checked before the lobby, so a reloaded page learns its seat is still held (and can
        # resume it) rather than being told to knock.
        raise ProtocolError("already_member", "This member is already in the room.")
    if bans.is_banned(node, conn, room, member_id):
        raise ProtocolError("banned", "You cannot enter this room.")
    # Someone a host admitted before comes back directly (the core checks it is the same card).
    if room.lobby and member_id != room.host_id and room.readmitted(member_id) is None:
        waiter = room.waiter(member_id)
        if waiter is None or waiter.admission is None:
            raise ProtocolError(
                "lobby_required", "This session has a lobby: knock and wait to be admitted."
            )
        drop_waiting(node, conn, room.room_id, member_id)


def drop_waiting(node: Node, conn: Connection | None, room_id: str, member_id: str) -> None:
    seat = node.registry.seats.get((room_id, member_id))
    if seat is not None and node.registry.rooms.get(room_id, set()).isdisjoint({member_id}):
        del node.registry.seats[(room_id, member_id)]
    if conn is not None:
        conn.waiting.pop(room_id, None)


async def lobby_knock(node: Node, conn: Connection, p: LobbyKnock) -> dict[str, Any]:
    rate_limit(conn.join_bucket.take(node.clock.now()), "joins")
    if p.room_id in conn.seats or p.room_id in conn.waiting:
        raise ProtocolError("already_member", "This connection is already there.")
    proven = await prove_card(node, conn, p.room_id, p.card, p.seat_proof, p.proof)
    current, card, proof_ok = proven.current, proven.card, proven.link_proof
    member_id = b64id(card.member_id)
    banned = bans.is_banned(node, conn, current.room, member_id)
    # Reachable for directed pushes (admitted, declined) but not subscribed to the room.
    seat = Seat(p.room_id, member_id, card, sid=conn.sid)
    node.registry.seats[(p.room_id, member_id)] = seat
    conn.waiting[p.room_id] = seat
    try:
        decision, _ = await node.service.apply(
            p.room_id,
            Knock(
                member_id=member_id,
                card=p.card,
                nickname=p.nickname,
                pseudonym_entropy=secrets.randbits(32),
                proof_ok=proof_ok,
                rules_accepted=p.accept_rules,
                banned=banned,
                now=node.clock.now(),
            ),
        )
    except ProtocolError as exc:
        drop_waiting(node, conn, p.room_id, member_id)
        raise with_rules(exc, current.room.rules) from None
    room = decision.room
    assert room is not None
    waiter = room.waiter(member_id)
    assert waiter is not None
    deadline = node.clock.now() + node.settings.presence_ttl_s
    await node.presence.touch(p.room_id, member_id, node.node_id, deadline)
    await tell_staff(
        node, room, LobbyWaitingPush(room_id=room.room_id, waiter=waiter_view(waiter, "waiting"))
    )
    return ok(lobby=lobby_view(room), member_id=member_id, pseudonym=waiter.pseudonym)


def staff_room(room: Room, member_id: str) -> Room:
    member = room.member(member_id)
    if member is None or member.role is Role.member:
        raise ProtocolError(ErrorCode.NOT_STAFF, "Only the room's hosts and moderators may.")
    return room


async def lobby_list(node: Node, conn: Connection, p: LobbyList) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now()), "requests")
    room = staff_room(await load_room(node, p.room_id), seat.member_id)
    return ok(
        waiting=[
            waiter_view(w, "admitted" if w.admission is not None else "waiting")
            for w in room.waiting
        ]
    )


async def lobby_admit(node: Node, conn: Connection, p: LobbyAdmit) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now(), cost=0.25), "admissions")
    room = await load_room(node, p.room_id)
    waiter = room.waiter(p.member_id)
    if waiter is not None and not credentials.verify_admission(
        seat.card.ed_public, p.admission, unb64id(p.room_id), waiter.card
    ):
        raise ProtocolError(ErrorCode.BAD_ADMISSION, "The admission does not verify.")
    decision, seq = await node.service.apply(
        p.room_id, Admit(seat.member_id, p.member_id, p.admission, node.clock.now())
    )
    after = decision.room
    assert after is not None
    admitted = after.waiter(p.member_id)
    if admitted is not None:
        await node.bus.send_direct(
            p.room_id, p.member_id, to_wire(LobbyAdmittedPush(room_id=p.room_id))
        )
        await tell_staff(
            node,
            after,
            LobbyWaitingPush(room_id=p.room_id, waiter=waiter_view(admitted, "admitted")),
        )
    return ok(seq=seq)


async def lobby_decline(node: Node, conn: Connection, p: LobbyDecline) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now(), cost=0.25), "requests")
    before = await load_room(node, p.room_id)
    waiter = before.waiter(p.member_id)
    decision, seq = await node.service.apply(
        p.room_id, Decline(seat.member_id, p.member_id, node.clock.now())
    )
    assert decision.room is not None
    if waiter is not None:
        await node.bus.send_direct(
            p.room_id,
            p.member_id,
            to_wire(LobbyDeclinedPush(room_id=p.room_id, reason="declined")),
        )
        await tell_staff(
            node,
            decision.room,
            LobbyWaitingPush(room_id=p.room_id, waiter=waiter_view(waiter, "declined")),
        )
    return ok(seq=seq)


def after_direct(node: Node, room_id: str, member_id: str, event: dict[str, Any]) -> None:
    """A waiter's node forgets the waiter once told it was declined (or the room ended)."""
    if event.get("t") == Push.LOBBY_DECLINED:
        seat = node.registry.seats.get((room_id, member_id))
        conn = node.registry.connections.get(seat.sid) if seat is not None else None
        drop_waiting(node, conn, room_id, member_id)


async def on_disconnect(node: Node, conn: Connection) -> None:
    """A waiter whose connection closed leaves the lobby at once (waiters do not resume)."""
    for room_id, seat in list(conn.waiting.items()):
        drop_waiting(node, conn, room_id, seat.member_id)
        try:
            await node.presence.remove(room_id, seat.member_id)
            decision, _ = await node.service.apply(
                room_id, Disconnect(member_id=seat.member_id, now=node.clock.now())
            )
        except (ProtocolError, BusUnavailable):
            continue
        waiter = (
            decision.events[0].waiter
            if decision.events and hasattr(decision.events[0], "waiter")
            else None
        )
        if decision.room is not None and waiter is not None:
            await tell_staff(
                node,
                decision.room,
                LobbyWaitingPush(room_id=decision.room.room_id, waiter=waiter_view(waiter, "left")),
            )
