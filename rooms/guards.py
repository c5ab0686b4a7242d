"""Permission checks shared by the rule modules, so every rule asks the same way."""

from __future__ import annotations

from rooms.errors import Refusal, RefusalCode, refuse
from rooms.model import Member, Role, Room, RoomKind, rank


def find_member(room: Room, member_id: str, *, who: str = "You are") -> Member | Refusal:
    """The member, or `not_member` phrased for whoever is missing."""
    member = room.member(member_id)
    if member is None:
        return refuse(RefusalCode.not_member, f"{who} not in this room.")
    return member


def is_staff(member: Member) -> bool:
    """Moderators and hosts: the roles that may moderate."""
    return rank(member.role) >= rank(Role.moderator)


def may_act_on(room: Room, actor: Member, target: Member) -> bool:
    """May `actor` remove or mute `target`?

    Moderators act on plain members only; hosts act on anyone except the room's
    owner (the host seat), and nobody acts on themselves (they leave instead).
    """
    if not is_staff(actor) or actor.member_id == target.member_id:
        return False
    if target.member_id == room.host_id:
        return False
    return actor.role is Role.host or rank(target.role) < rank(actor.role)


def may_end(room: Room, actor: Member) -> bool:
    """Hosts may end any room; in a peer room a moderator may too (no one else may)."""
    if actor.role is Role.host:
        return True
    return room.kind is RoomKind.peer and actor.role is Role.moderator


def forbidden(message: str) -> Refusal:
    """A `forbidden` refusal with an action-specific, input-free message."""
    return refuse(RefusalCode.forbidden, message)
