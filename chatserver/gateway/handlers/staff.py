"""Host and moderator controls: mute, unmute, remove (and ban), roles, room settings and the end
of a room. The rooms core decides who may; these check what only the shell can (the role
statement's signature, the address key of a ban)."""

from __future__ import annotations

from typing import Any

from chatserver.e2ee.roles import role_signer, verify_role
from chatserver.gateway import bans, lifecycle
from chatserver.gateway.common import load_room, rate_limit, seat_of
from chatserver.gateway.state import Connection
from chatserver.node import Node
from chatserver.protocol import (
    ErrorCode,
    MemberMute,
    MemberRemove,
    MemberRole,
    MemberUnmute,
    ProtocolError,
    RoomEnd,
    RoomSettings,
    ok,
)
from chatserver.protocol.ids import b64id, unb64id
from chatserver.protocol.views import room_view
from rooms import (
    Ban,
    Command,
    Lock,
    Mute,
    Remove,
    Role,
    SetDuration,
    SetPaused,
    SetQA,
    SetRole,
    SetRules,
    SetSlowMode,
    Unlock,
    Unmute,
)


async def _control(node: Node, conn: Connection, room_id: str, *commands: Command) -> int:
    seq = 0
    for command in commands:
        _, seq = await node.service.apply(room_id, command)
    return seq


def _actor(node: Node, conn: Connection, room_id: str) -> str:
    seat = seat_of(conn, room_id)
    rate_limit(conn.control_bucket.take(node.clock.now()), "moderation requests")
    return seat.member_id


async def member_mute(node: Node, conn: Connection, p: MemberMute) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    seq = await _control(
        node, conn, p.room_id, Mute(actor, p.member_id, p.duration_s, node.clock.now())
    )
    return ok(seq=seq)


async def member_unmute(node: Node, conn: Connection, p: MemberUnmute) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    seq = await _control(node, conn, p.room_id, Unmute(actor, p.member_id, node.clock.now()))
    return ok(seq=seq)


async def member_remove(node: Node, conn: Connection, p: MemberRemove) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    now = node.clock.now()
    if not p.ban:
        return ok(seq=await _control(node, conn, p.room_id, Remove(actor, p.member_id, now)))
    keys = {bans.member_key(p.member_id)}
    # The address key, if this node holds the member's connection; else the node that does adds
    # it when the departure reaches it (`bans.after_member_left`).
    held = bans.held_ban_key(node, p.room_id, p.member_id)
    if held is not None:
        keys.add(held)
    seq = await _control(node, conn, p.room_id, Ban(actor, p.member_id, frozenset(keys), now))
    return ok(seq=seq)


async def member_role(node: Node, conn: Connection, p: MemberRole) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    seat = seat_of(conn, p.room_id)
    signer = role_signer(p.role_proof)
    if (
        signer is None
        or b64id(signer) != actor
        or not verify_role(
            seat.card.ed_public, unb64id(p.room_id), unb64id(p.member_id), p.role, p.role_proof
        )
    ):
        raise ProtocolError(ErrorCode.BAD_ROLE_PROOF, "The role statement does not verify.")
    command = SetRole(actor, p.member_id, Role(p.role), node.clock.now(), p.role_proof)
    seq = await _control(node, conn, p.room_id, command)
    return ok(seq=seq)


async def room_settings(node: Node, conn: Connection, p: RoomSettings) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    now = node.clock.now()
    commands: list[Command] = []
    if p.locked is not None:
        commands.append(Lock(actor, now) if p.locked else Unlock(actor, now))
    if p.paused is not None:
        commands.append(SetPaused(actor, p.paused, now))
    if p.slow_mode_s is not None:
        commands.append(SetSlowMode(actor, p.slow_mode_s, now))
    if p.qa is not None:
        commands.append(SetQA(actor, p.qa, now))
    if p.rules is not None:
        commands.append(SetRules(actor, p.rules or None, now))
    if p.duration_s is not None:
        commands.append(SetDuration(actor, p.duration_s, now))
    seq = await _control(node, conn, p.room_id, *commands)
    room = await load_room(node, p.room_id)
    return ok(room=room_view(room), seq=seq)


async def room_end(node: Node, conn: Connection, p: RoomEnd) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    return ok(seq=await lifecycle.end_room(node, p.room_id, actor))
