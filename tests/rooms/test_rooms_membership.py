"""Join, leave, disconnect, remove, rename and the send check."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from rooms_helpers import (
    HOST,
    POLICY,
    T0,
    alive,
    create,
    join,
    joined,
    ok,
    refused,
    session_with_host,
)

from rooms import (
    CheckSend,
    Disconnect,
    Leave,
    LeaveReason,
    Lock,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    RefusalCode,
    Remove,
    Rename,
    Role,
    Room,
    RoomKind,
    RoomState,
    SetRole,
    Visibility,
    decide,
)
from rooms.nicknames import lookalike_key


def _member_role(room: Room, member_id: str, role: Role) -> Room:
    member = room.member(member_id)
    assert member is not None
    members = tuple(replace(m, role=role) if m.member_id == member_id else m for m in room.members)
    return replace(room, members=members)


def test_join_assigns_friendly_pseudonym_without_epoch_bump() -> None:
    room = create()
    d = ok(join(room, "a", entropy=0, now=T0 + 5))
    new = d.room
    assert new is not None
    member = new.member("a")
    assert member is not None
    assert d.events == (MemberJoined(member),)
    assert member.pseudonym == "Amber Alpaca"
    assert member.role is Role.member
    assert member.nick_chosen is False
    assert member.joined_at == T0 + 5
    assert member.card == b"card-a"
    assert member.muted_until is None
    assert new.epoch == room.epoch
    assert new.empty_since is None


def test_assigned_pseudonym_probes_past_taken_names() -> None:
    room = joined(create(), "a", entropy=7)
    d = ok(join(room, "b", entropy=7))
    assert d.room is not None
    assert d.room.pseudonyms()[0] != d.room.pseudonyms()[1]


def test_join_with_nickname_normalises_it() -> None:
    d = ok(join(create(), "a", nickname="  Quiet   Reader "))
    assert d.room is not None
    member = d.room.member("a")
    assert member is not None
    assert member.pseudonym == "Quiet Reader"
    assert member.nick_chosen is True


def test_join_refuses_bad_nickname() -> None:
    refused(join(create(), "a", nickname="Therapist"), RefusalCode.nickname_reserved)


def test_join_refuses_taken_and_confusable_nickname() -> None:
    room = joined(create(), "a", nickname="Calm Otter")
    refused(join(room, "b", nickname="calm otter"), RefusalCode.nickname_taken)
    refused(join(room, "b", nickname="CaIm Otter"), RefusalCode.nickname_confusable)


def test_join_refusals() -> None:
    room = joined(create(capacity=2), "a")
    refused(join(room, "a"), RefusalCode.already_member)
    full = joined(room, "b", entropy=9)
    refused(join(full, "c"), RefusalCode.room_full)
    refused(join(full, "a"), RefusalCode.already_member)


def test_locked_room_refuses_new_joins() -> None:
    room = _member_role(joined(create(), "a"), "a", Role.moderator)
    locked = ok(decide(room, Lock("a", T0 + 2), POLICY)).room
    assert locked is not None
    refused(join(locked, "c", now=T0 + 3), RefusalCode.room_locked)


def test_unlisted_room_needs_proof_first() -> None:
    room = create(visibility=Visibility.unlisted, capacity=2)
    refused(join(room, "a", proof_ok=None), RefusalCode.join_proof_required)
    refused(join(room, "a", proof_ok=False), RefusalCode.bad_proof)
    full = joined(room, "a", "b")
    # Without proof a caller cannot even learn that the room is full.
    refused(join(full, "c", proof_ok=None), RefusalCode.join_proof_required)
    refused(join(full, "c", proof_ok=True), RefusalCode.room_full)


def test_listed_room_ignores_proof() -> None:
    ok(join(create(), "a", proof_ok=None))


def test_session_host_seat_and_host_absent() -> None:
    room = create(kind=RoomKind.session)
    refused(join(room, "a"), RefusalCode.host_absent)
    room = joined(room, HOST)
    host = room.member(HOST)
    assert host is not None
    assert host.role is Role.host
    room = joined(room, "a")
    member = room.member("a")
    assert member is not None
    assert member.role is Role.member


def test_session_host_may_leave_and_rejoin_even_when_locked() -> None:
    room = session_with_host("a")
    room = alive(decide(room, Lock(HOST, T0 + 2), POLICY))
    room = alive(decide(room, Leave(HOST, T0 + 3), POLICY))
    assert room.state is RoomState.locked
    assert not room.host_present()
    assert room.member("a") is not None  # the session stays open for its members
    refused(join(room, "b", now=T0 + 4), RefusalCode.room_locked)
    room = alive(join(room, HOST, now=T0 + 5))
    assert room.host_present()


def test_owner_seat_is_reserved_while_owner_is_away() -> None:
    room = joined(create(host_id=HOST, capacity=3), "a")
    room = joined(room, "b", entropy=5)
    refused(join(room, "c"), RefusalCode.room_full)
    room = alive(join(room, HOST))
    assert len(room.members) == 3
    owner = room.member(HOST)
    assert owner is not None
    assert owner.role is Role.host  # the owner of a peer room hosts it too


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda now: Leave("a", now), LeaveReason.left),
        (lambda now: Disconnect("a", now), LeaveReason.disconnected),
        (lambda now: Disconnect("a", now, heartbeat_lapsed=True), LeaveReason.expired),
        (lambda now: Remove(HOST, "a", now), LeaveReason.removed),
    ],
)
def test_departures_bump_epoch(make: object, reason: LeaveReason) -> None:
    room = session_with_host("a", "b")
    d = ok(decide(room, make(T0 + 9), POLICY))  # type: ignore[operator]
    assert d.room is not None
    assert d.room.epoch == room.epoch + 1
    assert d.events == (MemberLeft("a", reason, room.epoch + 1),)
    assert d.room.member("a") is None
    assert d.room.empty_since is None
    refused(decide(d.room, CheckSend("a", d.room.epoch, T0 + 10), POLICY), RefusalCode.not_member)


def test_last_departure_starts_grace() -> None:
    room = joined(create(), "a")
    d = ok(decide(room, Disconnect("a", T0 + 50), POLICY))
    assert d.room is not None
    assert d.room.members == ()
    assert d.room.empty_since == T0 + 50


def test_leave_and_disconnect_need_membership() -> None:
    room = joined(create(), "a")
    refused(decide(room, Leave("x", T0 + 2), POLICY), RefusalCode.not_member)
    refused(decide(room, Disconnect("x", T0 + 2), POLICY), RefusalCode.not_member)


def test_remove_permissions() -> None:
    room = session_with_host("m", "n", "o")
    room = _member_role(_member_role(room, "m", Role.moderator), "n", Role.moderator)
    refused(decide(room, Remove("o", "m", T0), POLICY), RefusalCode.forbidden)  # member
    refused(decide(room, Remove("m", "n", T0), POLICY), RefusalCode.forbidden)  # mod on mod
    refused(decide(room, Remove("m", HOST, T0), POLICY), RefusalCode.forbidden)  # mod on host
    refused(decide(room, Remove("m", "m", T0), POLICY), RefusalCode.forbidden)  # self
    refused(decide(room, Remove(HOST, HOST, T0), POLICY), RefusalCode.forbidden)
    refused(decide(room, Remove("x", "o", T0), POLICY), RefusalCode.not_member)
    refused(decide(room, Remove("m", "x", T0), POLICY), RefusalCode.not_member)
    ok(decide(room, Remove("m", "o", T0), POLICY))
    ok(decide(room, Remove(HOST, "n", T0), POLICY))


def test_host_may_remove_cohost_but_not_owner() -> None:
    room = session_with_host("c")
    room = alive(decide(room, SetRole(HOST, "c", Role.host, T0), POLICY))
    refused(decide(room, Remove("c", HOST, T0), POLICY), RefusalCode.forbidden)
    assert ok(decide(room, Remove(HOST, "c", T0), POLICY)).room is not None


def test_rename() -> None:
    room = joined(create(), "a", "b", nickname=None)
    d = ok(decide(room, Rename("a", " New  Name ", T0 + 3), POLICY))
    assert d.room is not None
    member = d.room.member("a")
    assert member is not None
    assert (member.pseudonym, member.nick_chosen) == ("New Name", True)
    assert d.events == (MemberUpdated(member),)
    assert d.room.members[0].member_id == "a"  # join order kept
    assert d.room.epoch == room.epoch


def test_rename_may_change_own_case_but_not_copy_others() -> None:
    room = joined(create(), "a", nickname="Calm Otter")
    room = joined(room, "b", nickname="Brave Wren")
    ok(decide(room, Rename("a", "calm otter", T0), POLICY))
    refused(decide(room, Rename("a", "BRAVE WREN", T0), POLICY), RefusalCode.nickname_taken)
    refused(decide(room, Rename("a", "Brave Wrеn", T0), POLICY), RefusalCode.nickname_confusable)
    refused(decide(room, Rename("a", "x", T0), POLICY), RefusalCode.nickname_invalid)
    refused(decide(room, Rename("z", "Fine Name", T0), POLICY), RefusalCode.not_member)


def test_names_are_compared_by_the_stored_key_which_follows_every_rename() -> None:
    # A join compares the newcomer against each member's stored lookalike key, so the key must be
    # the current name's: after a rename the old name is free and the new one is guarded.
    room = joined(create(), "a", nickname="Calm Otter")
    member = room.member("a")
    assert member is not None and member.name_key == lookalike_key("Calm Otter")
    room = alive(decide(room, Rename("a", "Quiet Heron", T0), POLICY))
    renamed = room.member("a")
    assert renamed is not None and renamed.name_key == lookalike_key("Quiet Heron")
    assert alive(join(room, "b", nickname="Calm 0tter")).member("b") is not None
    refused(join(room, "b", nickname="Quiet Her0n"), RefusalCode.nickname_confusable)
    # A member record without the key (stored before it existed) is still compared.
    legacy = replace(room, members=tuple(replace(m, name_key="") for m in room.members))
    refused(join(legacy, "b", nickname="Quiet Her0n"), RefusalCode.nickname_confusable)


def test_check_send() -> None:
    room = session_with_host("a")
    d = ok(decide(room, CheckSend("a", room.epoch, T0 + 2), POLICY))
    assert d.room is room
    assert d.events == ()
    refused(decide(room, CheckSend("a", room.epoch - 1, T0 + 2), POLICY), RefusalCode.stale_epoch)
    refused(decide(room, CheckSend("a", room.epoch + 1, T0 + 2), POLICY), RefusalCode.stale_epoch)
    refused(decide(room, CheckSend("x", room.epoch, T0 + 2), POLICY), RefusalCode.not_member)


def test_check_send_muted_and_paused() -> None:
    room = session_with_host("a")
    member = room.member("a")
    assert member is not None
    muted = replace(room, members=(room.members[0], replace(member, muted_until=T0 + 10)))
    refused(decide(muted, CheckSend("a", 1, T0 + 9.9), POLICY), RefusalCode.muted)
    ok(decide(muted, CheckSend("a", 1, T0 + 10), POLICY))  # a mute ends exactly on time
    forever = replace(room, members=(room.members[0], replace(member, muted_until=math.inf)))
    refused(decide(forever, CheckSend("a", 1, T0 + 80_000), POLICY), RefusalCode.muted)
    paused = replace(room, paused=True)
    refused(decide(paused, CheckSend("a", 1, T0), POLICY), RefusalCode.paused)
    ok(decide(paused, CheckSend(HOST, 1, T0), POLICY))
    mod = _member_role(paused, "a", Role.moderator)
    ok(decide(mod, CheckSend("a", 1, T0), POLICY))
