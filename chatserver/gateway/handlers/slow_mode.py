"""Slow mode: one message per `slow_mode_s` per member, cluster-wide, keyed without the member id
in clear (a hash of the seat)."""

from __future__ import annotations

import hashlib

from chatserver.node import Node
from chatserver.protocol import (
    ErrorCode,
    ProtocolError,
)
from rooms import (
    Role,
    Room,
)


def _seat_key(room_id: str, member_id: str) -> str:
    return hashlib.sha256(f"{room_id}|{member_id}".encode()).hexdigest()[:32]


async def enforce(node: Node, room: Room, member_id: str, now: float) -> None:
    """One message per `slow_mode_s` per member, cluster-wide (the shared rate limiter)."""
    if room.slow_mode_s <= 0:
        return
    member = room.member(member_id)
    if member is None or member.role is not Role.member:
        return
    key = "slow:" + _seat_key(room.room_id, member_id) + f":{room.slow_mode_s}"
    wait = await node.limiter.hit(key, 1.0 / room.slow_mode_s, 1, now)
    if wait > 0:
        raise ProtocolError(ErrorCode.RATE_LIMITED, "Slow mode is on; wait a moment.", wait)
