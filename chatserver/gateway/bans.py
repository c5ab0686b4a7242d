"""Room bans by address, without a per-seat address record.

A ban keys the member id and, when the address is known, `AddressKeys.ban_key(room, group)`: a
keyed hash bound to the room. Only the node holding the member's connection (or that held it within
the resume grace) knows the group, so that node adds the key: at once when the ban is issued there,
otherwise when the departure reaches it (`after_member_left`). A join computes the same keys for
the joiner and checks them against the room's bans. Nobody else's address is ever keyed into Redis.
"""

from __future__ import annotations

from chatserver.gateway.state import Connection
from chatserver.node import Node
from chatserver.ports import BusUnavailable
from rooms import AddBanKey, Room


def member_key(member_id: str) -> str:
    return f"member:{member_id}"


def join_keys(node: Node, conn: Connection, room_id: str, member_id: str) -> frozenset[str]:
    """What a joiner is checked against: its member id and its group's keys for this room."""
    keys = {member_key(member_id)}
    group = node.abuse.groups.get(conn.sid)
    if group is not None:
        keys |= node.abuse.keys.ban_keys(room_id, group)
    return frozenset(keys)


def is_banned(node: Node, conn: Connection, room: Room, member_id: str) -> bool:
    return bool(room.bans and room.bans & join_keys(node, conn, room.room_id, member_id))


def held_ban_key(node: Node, room_id: str, member_id: str) -> str | None:
    """The member's address key for this room, if this node holds (or just held) its seat."""
    seat = node.registry.seat(room_id, member_id)
    group = node.abuse.seat_group(room_id, member_id, seat.sid if seat else None)
    return node.abuse.keys.ban_key(room_id, group) if group is not None else None


async def after_member_left(node: Node, room_id: str, member_id: str) -> None:
    """A member left: if it was banned and this node knew its address, ban the address too."""
    key = held_ban_key(node, room_id, member_id)
    if key is None:
        return  # not ours (the common case: no I/O)
    try:
        current = await node.store.load(room_id)
        if current is None:
            return
        bans = current.room.bans
        if member_key(member_id) not in bans or key in bans:
            return
        await node.service.apply(room_id, AddBanKey(key, node.clock.now()))
    except BusUnavailable:
        return  # the member id stays banned; only its address goes unkeyed
