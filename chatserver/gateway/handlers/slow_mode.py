"""Slow mode: one message per `slow_mode_s` per member, cluster-wide, keyed without the member id
in clear (a hash of the seat)."""

from __future__ import annotations

import hashlib

from chatserver.ports import Quota
from rooms import (
    Role,
    Room,
)

SLOW_MODE = "slow_mode"  # the quota's name, for the refusal's wording


def _seat_key(room_id: str, member_id: str) -> str:
    return hashlib.sha256(f"{room_id}|{member_id}".encode()).hexdigest()[:32]


def quota(room: Room, member_id: str) -> Quota | None:
    """One message per `slow_mode_s` per member, cluster-wide: a quota the message's append takes
    (None when slow mode is off or the sender is staff)."""
    if room.slow_mode_s <= 0:
        return None
    member = room.member(member_id)
    if member is None or member.role is not Role.member:
        return None
    key = "slow:" + _seat_key(room.room_id, member_id) + f":{room.slow_mode_s}"
    return Quota(SLOW_MODE, key, 1.0 / room.slow_mode_s, 1)
