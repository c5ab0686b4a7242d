"""Pins, a session's own end, and readmission of members a host admitted earlier."""

from __future__ import annotations

from dataclasses import replace

from rooms_helpers import HOST, POLICY, T0, alive, ok, refused, session_with_host

from rooms import (
    Admit,
    Ban,
    CheckSend,
    ClearPin,
    CreateRoom,
    EndReason,
    Join,
    Knock,
    Leave,
    Lock,
    Pin,
    PinCleared,
    RefusalCode,
    Remove,
    Room,
    RoomEnded,
    RoomKind,
    RoomSettingsChanged,
    RoomState,
    SetDuration,
    SetPin,
    SetRole,
    Tick,
    Visibility,
    decide,
)
from rooms.model import Role


def _staffed() -> Room:
    room = session_with_host("mod", "a")
    return alive(decide(room, SetRole(HOST, "mod", Role.moderator, T0 + 2)))


# pins


def test_only_staff_may_send_a_pin() -> None:
    room = _staffed()
    refused(decide(room, CheckSend("a", room.epoch, T0 + 3, pin=True)), RefusalCode.forbidden)
    ok(decide(room, CheckSend("mod", room.epoch, T0 + 3, pin=True)))
    ok(decide(room, CheckSend(HOST, room.epoch, T0 + 3, pin=True)))
    ok(decide(room, CheckSend("a", room.epoch, T0 + 3)))  # an ordinary message is fine


def test_the_newest_pin_wins_and_an_older_one_changes_nothing() -> None:
    room = _staffed()
    first = ok(decide(room, SetPin(HOST, 10, b"push-10", T0 + 3)))
    assert first.events == ()  # the msg push itself told everyone
    assert first.room is not None and first.room.pinned == Pin(10, HOST, b"push-10")
    newer = alive(decide(first.room, SetPin("mod", 12, b"push-12", T0 + 4)))
    assert newer.pinned == Pin(12, "mod", b"push-12")
    late = ok(decide(newer, SetPin(HOST, 11, b"push-11", T0 + 5)))
    assert late.room == newer and late.events == ()


def test_members_cannot_pin_or_unpin() -> None:
    room = alive(decide(_staffed(), SetPin(HOST, 3, b"p", T0 + 3)))
    refused(decide(room, SetPin("a", 4, b"q", T0 + 4)), RefusalCode.forbidden)
    refused(decide(room, ClearPin("a", T0 + 4)), RefusalCode.forbidden)
    assert room.pinned is not None


def test_unpin_is_announced_once() -> None:
    room = alive(decide(_staffed(), SetPin(HOST, 3, b"p", T0 + 3)))
    cleared = ok(decide(room, ClearPin("mod", T0 + 4)))
    assert cleared.events == (PinCleared("mod"),)
    assert cleared.room is not None and cleared.room.pinned is None
    again = ok(decide(cleared.room, ClearPin("mod", T0 + 5)))
    assert again.events == () and again.room == cleared.room


# a session's end


def _scheduled(starts_at: float | None, duration_s: float) -> Room:
    cmd = CreateRoom(
        "s", RoomKind.session, Visibility.unlisted, None, None, b"k" * 32, 10, T0, HOST
    )
    cmd = replace(cmd, starts_at=starts_at, duration_s=duration_s)
    room = alive(decide(None, cmd, POLICY))
    return alive(decide(room, Join(HOST, b"card-h", b"t", None, 0, True, T0 + 1)))


def test_a_session_ends_itself_after_its_planned_end_and_the_overrun() -> None:
    room = _scheduled(T0 + 600, 3600)
    end = T0 + 600 + 3600 + POLICY.session_overrun_s
    assert room.ends_at == end and room.next_expiry(POLICY) == end
    assert alive(decide(room, Tick(end - 1))) == room
    over = ok(decide(room, Tick(end)))
    assert over.room is None and over.events == (RoomEnded(EndReason.time_up),)
    refused(decide(room, CheckSend(HOST, room.epoch, end)), RefusalCode.room_ended)


def test_without_a_start_the_duration_counts_from_creation() -> None:
    room = _scheduled(None, 1800)
    assert room.ends_at == T0 + 1800 + POLICY.session_overrun_s


def test_hosts_extend_a_session_and_everyone_is_told() -> None:
    room = _scheduled(None, 1800)
    extended = ok(decide(room, SetDuration(HOST, 2700, T0 + 1700)))
    new_end = T0 + 2700 + POLICY.session_overrun_s
    assert extended.room is not None and extended.room.ends_at == new_end
    assert extended.events == (RoomSettingsChanged(RoomState.open, False, 0, 2700, new_end),)
    assert ok(decide(extended.room, Tick(T0 + 1800 + POLICY.session_overrun_s))).room is not None


def test_only_hosts_change_the_duration_and_never_into_the_past() -> None:
    room = alive(decide(_scheduled(None, 1800), Join("m", b"card-m", b"t", None, 1, True, T0 + 2)))
    refused(decide(room, SetDuration("m", 3600, T0 + 3)), RefusalCode.forbidden)
    refused(decide(room, SetDuration(HOST, 60, T0 + 120)), RefusalCode.invalid_schedule)
    refused(decide(room, SetDuration(HOST, float("nan"), T0 + 3)), RefusalCode.invalid_schedule)
    far = SetDuration(HOST, POLICY.max_lifetime_s * 2, T0 + 3)
    refused(decide(room, far), RefusalCode.invalid_schedule)


def test_a_session_never_outlives_the_room_lifetime() -> None:
    room = _scheduled(None, POLICY.max_lifetime_s)
    assert room.ends_at == room.expires_at


# readmission in lobby rooms


def _lobby_with_member(member_id: str = "a") -> Room:
    cmd = CreateRoom(
        "l", RoomKind.session, Visibility.listed, "T", None, None, 10, T0, HOST, lobby=True
    )
    room = alive(decide(None, cmd, POLICY))
    room = alive(decide(room, Join(HOST, b"card-h", b"t", None, 0, True, T0 + 1)))
    card = b"card-" + member_id.encode()
    room = alive(decide(room, Knock(member_id, card, None, 1, True, True, False, T0 + 2)))
    room = alive(decide(room, Admit(HOST, member_id, b"sig", T0 + 3)))
    return alive(decide(room, Join(member_id, card, b"t", None, 2, True, T0 + 4)))


def test_a_member_who_left_comes_back_with_the_same_card_without_queueing() -> None:
    room = _lobby_with_member()
    name = room.member("a").pseudonym  # type: ignore[union-attr]
    gone = alive(decide(room, Leave("a", T0 + 5)))
    assert gone.waiting == () and gone.readmitted("a") is not None
    back = alive(decide(gone, Join("a", b"card-a", b"t2", None, 9, True, T0 + 6)))
    member = back.member("a")
    assert member is not None and member.admission == b"sig" and member.pseudonym == name
    assert back.readmit == ()


def test_readmission_needs_the_same_card() -> None:
    gone = alive(decide(_lobby_with_member(), Leave("a", T0 + 5)))
    refused(
        decide(gone, Join("a", b"another card", b"t2", None, 9, True, T0 + 6)),
        RefusalCode.lobby_required,
    )


def test_a_returning_member_passes_a_lock_but_a_newcomer_does_not() -> None:
    gone = alive(decide(_lobby_with_member(), Leave("a", T0 + 5)))
    locked = alive(decide(gone, Lock(HOST, T0 + 6)))
    ok(decide(locked, Join("a", b"card-a", b"t2", None, 9, True, T0 + 7)))
    refused(
        decide(locked, Knock("b", b"card-b", None, 3, True, True, False, T0 + 7)),
        RefusalCode.room_locked,
    )
    refused(
        decide(locked, Join("b", b"card-b", b"t", None, 3, True, T0 + 7)),
        RefusalCode.lobby_required,
    )


def test_removal_and_bans_forfeit_readmission() -> None:
    room = _lobby_with_member()
    removed = alive(decide(room, Remove(HOST, "a", T0 + 5)))
    assert removed.readmitted("a") is None
    refused(
        decide(removed, Join("a", b"card-a", b"t2", None, 9, True, T0 + 6)),
        RefusalCode.lobby_required,
    )
    banned = alive(decide(room, Ban(HOST, "a", frozenset({"a"}), T0 + 5)))
    assert banned.readmitted("a") is None
