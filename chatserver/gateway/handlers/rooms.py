"""Handlers for room.create, room.challenge, room.join, room.leave, room.list, room.info and
room.rename (resuming a seat: `resume.py`)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from chatserver.gateway import charters, seat_proofs, seats
from chatserver.gateway.common import prove_card, rate_limit, seat_of
from chatserver.gateway.handlers import lobby
from chatserver.gateway.state import Connection, Seat
from chatserver.node import Node
from chatserver.protocol import (
    ErrorCode,
    ProtocolError,
    RoomChallenge,
    RoomCreate,
    RoomInfo,
    RoomJoin,
    RoomLeave,
    RoomList,
    RoomRename,
    ok,
    with_rules,
)
from chatserver.protocol.ids import b64id, unb64id
from chatserver.protocol.views import member_view, room_view
from rooms import (
    CreateRoom,
    Join,
    Leave,
    RefusalCode,
    Rename,
    RoomKind,
    RoomState,
    Visibility,
    directory_entry,
)

MAX_LISTED = 200


async def room_create(node: Node, conn: Connection, p: RoomCreate) -> dict[str, Any]:
    rate_limit(conn.create_bucket.take(node.clock.now()), "rooms created")
    if p.kind == "session":
        # A session shows a verified therapist's badge and has a lobby: only session.create,
        # after therapist.signin, makes one.
        raise ProtocolError(
            ErrorCode.NOT_SIGNED_IN,
            "Sessions are created by a signed-in therapist with session.create.",
        )
    await node.abuse.check_create(conn.sid)
    if p.listed:
        if p.room_id is not None or p.join_key is not None:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "A listed room takes no room_id or join_key."
            )
        room_id = b64id(secrets.token_bytes(16))
    else:
        if p.room_id is None or p.join_key is None:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "A private room needs room_id and join_key from its link."
            )
        room_id = p.room_id
        if await node.store.load(room_id) is not None:
            raise ProtocolError(RefusalCode.room_exists, "A room with this id already exists.")
        charters.require(room_id, p.join_key, p.charter, p.host_id, lobby=False)
    command = CreateRoom(
        room_id=room_id,
        kind=RoomKind(p.kind),
        visibility=Visibility.listed if p.listed else Visibility.unlisted,
        topic=p.topic,
        title_ct=p.title,
        join_key=p.join_key,
        capacity=p.capacity,
        now=node.clock.now(),
        host_id=p.host_id,
        disappear_after_s=p.disappear_after_s or 0,
        charter=p.charter if not p.listed else None,
    )
    decision, _ = await node.service.apply(room_id, command)
    assert decision.room is not None
    return ok(room=room_view(decision.room))


async def room_challenge(node: Node, conn: Connection, p: RoomChallenge) -> dict[str, Any]:
    rate_limit(conn.control_bucket.take(node.clock.now()), "requests")
    current = await node.store.load(p.room_id)
    if current is None:
        raise ProtocolError(RefusalCode.room_not_found, "No such room.")
    nonce = secrets.token_bytes(32)
    conn.remember_challenge(p.room_id, nonce, node.clock.now())
    return ok(nonce=nonce)


async def room_join(node: Node, conn: Connection, p: RoomJoin) -> dict[str, Any]:
    if p.room_id in conn.seats:
        raise ProtocolError("already_member", "This connection is already in the room.")
    if len(conn.seats) >= node.settings.rooms_per_connection:
        raise ProtocolError(ErrorCode.TOO_MANY_ROOMS, "This connection is in too many rooms.")
    rate_limit(conn.join_bucket.take(node.clock.now()), "joins")
    await node.abuse.check_join(conn.sid)
    proven = await prove_card(node, conn, p.room_id, p.card, p.seat_proof, p.proof)
    current, room_key, card = proven.current, proven.room_key, proven.card
    proof_ok = proven.link_proof
    # Only once the link proof holds: without the link, the core's refusal says no more.
    member_proof = (
        seat_proofs.require_member_proof(current.room, room_key, card.member_id, p.member_proof)
        if proof_ok
        else None
    )
    member_id = b64id(card.member_id)
    # Room bans and the lobby's front door (chatserver/gateway/handlers/lobby.py).
    await lobby.before_join(node, conn, current.room, member_id, proof_ok)
    if node.registry.seat(p.room_id, member_id) is not None:
        # Another connection of this node holds this member's seat: resume it, do not join twice.
        raise ProtocolError("already_member", "This member is already in the room.")
    token = secrets.token_bytes(32)
    seat = Seat(p.room_id, member_id, card, sid=conn.sid)
    # Take the seat, subscribe and record this node as the holder before deciding: no event after
    # the snapshot is missed, and the keys others send in answer to the join find this node.
    await seats.attach(node, conn, seat)
    await seats.hold(node, p.room_id, member_id)
    try:
        decision, seq = await node.service.apply(
            p.room_id,
            Join(
                member_id=member_id,
                card=p.card,
                token_hash=hashlib.sha256(token).digest(),
                nickname=p.nickname,
                pseudonym_entropy=secrets.randbits(32),
                proof_ok=proof_ok,
                now=node.clock.now(),
                rules_accepted=p.accept_rules,
                member_proof=member_proof,
            ),
        )
    except ProtocolError as exc:
        await seats.detach(node, p.room_id, member_id)
        await node.presence.remove(p.room_id, member_id)
        raise with_rules(exc, current.room.rules) from None
    room = decision.room
    assert room is not None
    me = room.member(member_id)
    assert me is not None
    node.registry.known[p.room_id] = room
    return ok(
        room=room_view(room),
        you={**member_view(me), "token": token},
        members=[member_view(m) for m in room.members],
        seq=seq,
    )


async def room_leave(node: Node, conn: Connection, p: RoomLeave) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    await seats.detach(node, p.room_id, seat.member_id)
    await node.presence.remove(p.room_id, seat.member_id)
    _, seq = await node.service.apply(
        p.room_id, Leave(member_id=seat.member_id, now=node.clock.now())
    )
    return ok(seq=seq)


async def room_list(node: Node, conn: Connection, p: RoomList) -> dict[str, Any]:
    rate_limit(conn.control_bucket.take(node.clock.now()), "requests")
    wanted = p.topic.casefold() if p.topic else None
    entries: list[dict[str, Any]] = []
    for room in await node.store.listed():
        entry = directory_entry(room)
        if entry is None or (wanted and wanted not in (entry.topic or "").casefold()):
            continue
        entries.append(
            {
                "room_id": entry.room_id,
                "topic": entry.topic,
                "kind": str(entry.kind),
                "members": entry.member_count,
                "created_at": entry.created_at,
                # Sessions: when they start, and the badge clients verify to show the host's name.
                "starts_at": room.starts_at,
                "badge": room.badge,
                "host_id": room.host_id,
            }
        )
    entries.sort(key=lambda e: (-e["members"], -e["created_at"]))
    return ok(rooms=entries[:MAX_LISTED])


# A join proof for this member id takes no seat: no key card derives it.
INFO_MEMBER_ID = bytes(16)


async def room_info(node: Node, conn: Connection, p: RoomInfo) -> dict[str, Any]:
    """What the join page shows before joining: only what a link holder learns on joining."""
    rate_limit(conn.control_bucket.take(node.clock.now()), "requests")
    current = await node.store.load(p.room_id)
    if current is None:
        raise ProtocolError(RefusalCode.room_not_found, "No such room.")
    room = current.room
    if room.visibility is Visibility.unlisted:
        room_key = unb64id(p.room_id)
        nonce = seat_proofs.take_nonce(conn, p.room_id, node.clock.now())
        proof_ok = seat_proofs.link_proof(room, room_key, nonce, INFO_MEMBER_ID, p.proof)
        if proof_ok is None:
            raise ProtocolError(
                RefusalCode.join_proof_required, "A private room needs proof of its link."
            )
        if not proof_ok:
            raise ProtocolError(RefusalCode.bad_proof, "The link proof does not verify.")
    if room.state is RoomState.ended:
        raise ProtocolError(RefusalCode.room_ended, "The room has ended.")
    return ok(
        room={
            "room_id": room.room_id,
            "kind": str(room.kind),
            "visibility": str(room.visibility),
            "topic": room.topic,
            "title": room.title_ct,
            "state": str(room.state),
            "host_id": room.host_id,
            "badge": room.badge,
            "charter": room.charter,
            "starts_at": room.starts_at,
        }
    )


async def room_rename(node: Node, conn: Connection, p: RoomRename) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now()), "renames")
    decision, seq = await node.service.apply(
        p.room_id, Rename(member_id=seat.member_id, nickname=p.nickname, now=node.clock.now())
    )
    assert decision.room is not None
    me = decision.room.member(seat.member_id)
    assert me is not None
    return ok(you=member_view(me), seq=seq)
