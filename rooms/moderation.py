"""Room controls for hosts and moderators: roles, mutes, lock, pause, slow mode.

Roles form a ladder (member < moderator < host). Only hosts change roles, and
nobody changes their own (so a room can never talk itself out of having a host
by a role change); the owner's host seat is never demoted, removed or muted.
Repeating a setting that is already in force succeeds with no events, so a
client retrying after a reconnect does no harm.
"""

from __future__ import annotations

import math
from dataclasses import replace

from rooms.commands import (
    Lock,
    Mute,
    SetDuration,
    SetPaused,
    SetRole,
    SetSlowMode,
    Unlock,
    Unmute,
)
from rooms.errors import Refusal, RefusalCode, refuse
from rooms.events import RoomSettingsChanged
from rooms.guards import find_member, forbidden, is_staff, may_act_on
from rooms.membership import update_member
from rooms.model import Member, Role, Room, RoomPolicy, RoomState
from rooms.outcome import Decision, Outcome


def set_role(room: Room, cmd: SetRole) -> Outcome:
    """A host makes someone a member, moderator or co-host."""
    actor = find_member(room, cmd.actor_id)
    if isinstance(actor, Refusal):
        return actor
    target = find_member(room, cmd.member_id, who="That member is")
    if isinstance(target, Refusal):
        return target
    if actor.role is not Role.host:
        return forbidden("Only a host can change roles.")
    if target.role is cmd.role:
        return Decision(room)
    if target.member_id == actor.member_id or target.member_id == room.host_id:
        return forbidden("This member's role cannot be changed.")
    return update_member(room, replace(target, role=cmd.role, role_proof=cmd.role_proof))


def _staff_and_target(room: Room, actor_id: str, member_id: str) -> tuple[Member, Member] | Refusal:
    actor = find_member(room, actor_id)
    if isinstance(actor, Refusal):
        return actor
    target = find_member(room, member_id, who="That member is")
    if isinstance(target, Refusal):
        return target
    if not may_act_on(room, actor, target):
        return forbidden("Your role cannot mute or unmute that member.")
    return actor, target


def mute(room: Room, cmd: Mute) -> Outcome:
    """Mute for `duration_s` seconds from now, or until unmuted when it is None."""
    pair = _staff_and_target(room, cmd.actor_id, cmd.member_id)
    if isinstance(pair, Refusal):
        return pair
    duration = math.inf if cmd.duration_s is None else cmd.duration_s
    if not duration > 0:  # also refuses NaN
        return refuse(RefusalCode.invalid_duration)
    return update_member(room, replace(pair[1], muted_until=cmd.now + duration))


def unmute(room: Room, cmd: Unmute) -> Outcome:
    """Lift a mute; unmuting someone who is not muted changes nothing."""
    pair = _staff_and_target(room, cmd.actor_id, cmd.member_id)
    if isinstance(pair, Refusal):
        return pair
    target = pair[1]
    if target.muted_until is None:
        return Decision(room)
    return update_member(room, replace(target, muted_until=None))


def _settings(room: Room, actor_id: str, new: Room) -> Outcome:
    actor = find_member(room, actor_id)
    if isinstance(actor, Refusal):
        return actor
    if not is_staff(actor):
        return forbidden("Only a host or moderator can change room settings.")
    if new == room:
        return Decision(room)
    return Decision(new, (settings_changed(new),))


def settings_changed(room: Room) -> RoomSettingsChanged:
    """The settings event as the room now is."""
    return RoomSettingsChanged(
        room.state, room.paused, room.slow_mode_s, room.duration_s, room.ends_at
    )


def lock(room: Room, cmd: Lock) -> Outcome:
    """Stop new joins; the members already in stay."""
    return _settings(room, cmd.actor_id, replace(room, state=RoomState.locked))


def unlock(room: Room, cmd: Unlock) -> Outcome:
    """Allow new joins again."""
    return _settings(room, cmd.actor_id, replace(room, state=RoomState.open))


def set_paused(room: Room, cmd: SetPaused) -> Outcome:
    """Pause (only hosts and moderators may send) or resume the room."""
    return _settings(room, cmd.actor_id, replace(room, paused=cmd.paused))


def set_slow_mode(room: Room, cmd: SetSlowMode, policy: RoomPolicy) -> Outcome:
    """Record the slow-mode interval (the shell's rate limiter enforces it)."""
    if not 0 <= cmd.slow_mode_s <= policy.max_slow_mode_s:
        return refuse(
            RefusalCode.invalid_duration,
            f"Slow mode must be between 0 and {policy.max_slow_mode_s} seconds.",
        )
    return _settings(room, cmd.actor_id, replace(room, slow_mode_s=cmd.slow_mode_s))


def session_end(start: float, duration_s: float, policy: RoomPolicy) -> float:
    """When the server ends a session by itself: its planned end plus the overrun grace."""
    return start + duration_s + policy.session_overrun_s


def set_duration(room: Room, cmd: SetDuration, policy: RoomPolicy) -> Outcome:
    """A host extends (or shortens) a session; it may never outlive the room's lifetime."""
    actor = find_member(room, cmd.actor_id)
    if isinstance(actor, Refusal):
        return actor
    if actor.role is not Role.host:
        return forbidden("Only a host can change the session's duration.")
    start = room.created_at if room.starts_at is None else room.starts_at
    if not 0 < cmd.duration_s <= policy.max_lifetime_s or start + cmd.duration_s <= cmd.now:
        return refuse(RefusalCode.invalid_schedule)
    ends_at = min(session_end(start, cmd.duration_s, policy), room.expires_at)
    new = replace(room, duration_s=cmd.duration_s, ends_at=ends_at)
    if new == room:
        return Decision(room)
    return Decision(new, (settings_changed(new),))
