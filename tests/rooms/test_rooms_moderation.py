"""Roles, mutes, lock, pause and slow mode."""

from __future__ import annotations

import math

import pytest
from rooms_helpers import HOST, POLICY, T0, create, joined, ok, refused, session_with_host

from rooms import (
    CheckSend,
    Lock,
    MemberUpdated,
    Mute,
    RefusalCode,
    Role,
    Room,
    RoomSettingsChanged,
    RoomState,
    SetPaused,
    SetRole,
    SetSlowMode,
    Unlock,
    Unmute,
    decide,
)


def _promote(room: Room, member_id: str, role: Role) -> Room:
    new = ok(decide(room, SetRole(HOST, member_id, role, T0), POLICY)).room
    assert new is not None
    return new


def test_host_sets_roles() -> None:
    room = session_with_host("a")
    d = ok(decide(room, SetRole(HOST, "a", Role.moderator, T0), POLICY))
    assert d.room is not None
    member = d.room.member("a")
    assert member is not None
    assert member.role is Role.moderator
    assert d.events == (MemberUpdated(member),)
    assert d.room.epoch == room.epoch


def test_same_role_is_a_no_op() -> None:
    room = session_with_host("a")
    d = ok(decide(room, SetRole(HOST, "a", Role.member, T0), POLICY))
    assert d.room is room
    assert d.events == ()


def test_set_role_refusals() -> None:
    room = _promote(session_with_host("a", "b"), "a", Role.moderator)
    refused(decide(room, SetRole("a", "b", Role.moderator, T0), POLICY), RefusalCode.forbidden)
    refused(decide(room, SetRole("b", "b", Role.host, T0), POLICY), RefusalCode.forbidden)
    refused(decide(room, SetRole(HOST, HOST, Role.member, T0), POLICY), RefusalCode.forbidden)
    refused(decide(room, SetRole(HOST, "x", Role.member, T0), POLICY), RefusalCode.not_member)
    refused(decide(room, SetRole("x", "a", Role.member, T0), POLICY), RefusalCode.not_member)


def test_cohost_cannot_demote_self_or_owner() -> None:
    room = _promote(session_with_host("c"), "c", Role.host)
    refused(decide(room, SetRole("c", "c", Role.member, T0), POLICY), RefusalCode.forbidden)
    refused(decide(room, SetRole("c", HOST, Role.member, T0), POLICY), RefusalCode.forbidden)
    room = _promote(room, "c", Role.member)
    member = room.member("c")
    assert member is not None
    assert member.role is Role.member


def test_mute_for_a_while_and_until_unmuted() -> None:
    room = session_with_host("a")
    d = ok(decide(room, Mute(HOST, "a", 30, T0), POLICY))
    assert d.room is not None
    member = d.room.member("a")
    assert member is not None
    assert member.muted_until == T0 + 30
    assert d.events == (MemberUpdated(member),)
    refused(decide(d.room, CheckSend("a", 1, T0 + 29), POLICY), RefusalCode.muted)
    ok(decide(d.room, CheckSend("a", 1, T0 + 30), POLICY))
    forever = ok(decide(room, Mute(HOST, "a", None, T0), POLICY)).room
    assert forever is not None
    member = forever.member("a")
    assert member is not None
    assert member.muted_until == math.inf
    unmuted = ok(decide(forever, Unmute(HOST, "a", T0 + 1), POLICY)).room
    assert unmuted is not None
    ok(decide(unmuted, CheckSend("a", 1, T0 + 2), POLICY))
    again = ok(decide(unmuted, Unmute(HOST, "a", T0 + 1), POLICY))
    assert again.events == ()


@pytest.mark.parametrize("duration", [0, -1, math.nan])
def test_bad_mute_duration(duration: float) -> None:
    room = session_with_host("a")
    refused(decide(room, Mute(HOST, "a", duration, T0), POLICY), RefusalCode.invalid_duration)


def test_mute_permissions() -> None:
    room = _promote(session_with_host("m", "a"), "m", Role.moderator)
    refused(decide(room, Mute("a", "m", 10, T0), POLICY), RefusalCode.forbidden)
    refused(decide(room, Mute("m", HOST, 10, T0), POLICY), RefusalCode.forbidden)
    refused(decide(room, Unmute("a", "m", T0), POLICY), RefusalCode.forbidden)
    refused(decide(room, Mute("m", "x", 10, T0), POLICY), RefusalCode.not_member)
    ok(decide(room, Mute("m", "a", 10, T0), POLICY))


def test_lock_unlock() -> None:
    room = _promote(session_with_host("m", "a"), "m", Role.moderator)
    refused(decide(room, Lock("a", T0), POLICY), RefusalCode.forbidden)
    refused(decide(room, Lock("x", T0), POLICY), RefusalCode.not_member)
    d = ok(decide(room, Lock("m", T0), POLICY))
    assert d.room is not None
    assert d.room.state is RoomState.locked
    assert d.events == (RoomSettingsChanged(RoomState.locked, False, 0),)
    assert ok(decide(d.room, Lock("m", T0), POLICY)).events == ()
    refused(decide(d.room, Unlock("a", T0), POLICY), RefusalCode.forbidden)
    back = ok(decide(d.room, Unlock(HOST, T0), POLICY))
    assert back.room is not None
    assert back.room.state is RoomState.open


def test_pause_and_slow_mode() -> None:
    room = joined(create(host_id=HOST), HOST, "a")
    refused(decide(room, SetPaused("a", True, T0), POLICY), RefusalCode.forbidden)
    d = ok(decide(room, SetPaused(HOST, True, T0), POLICY))
    assert d.room is not None
    assert d.room.paused
    assert d.events == (RoomSettingsChanged(RoomState.open, True, 0),)
    s = ok(decide(d.room, SetSlowMode(HOST, 30, T0), POLICY))
    assert s.room is not None
    assert s.room.slow_mode_s == 30
    assert s.events == (RoomSettingsChanged(RoomState.open, True, 30),)
    for bad in (-1, POLICY.max_slow_mode_s + 1):
        refused(decide(room, SetSlowMode(HOST, bad, T0), POLICY), RefusalCode.invalid_duration)
    refused(decide(room, SetSlowMode("a", 5, T0), POLICY), RefusalCode.forbidden)
