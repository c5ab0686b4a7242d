"""Creating, expiring and ending rooms; the directory view."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rooms_helpers import HOST, POLICY, T0, alive, create, joined, ok, refused

from rooms import (
    CreateRoom,
    End,
    EndReason,
    Leave,
    RefusalCode,
    Role,
    RoomCreated,
    RoomEnded,
    RoomKind,
    RoomPolicy,
    RoomState,
    Tick,
    Visibility,
    decide,
    directory_entry,
)


def _create(**overrides: object) -> CreateRoom:
    base = CreateRoom("r", RoomKind.peer, Visibility.listed, "Grief", None, None, None, T0, None)
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_create_listed_peer_room_defaults() -> None:
    d = ok(decide(None, _create(), POLICY))
    room = d.room
    assert room is not None
    assert d.events == (RoomCreated(room),)
    assert room.state is RoomState.open
    assert room.epoch == 1
    assert room.capacity == POLICY.default_capacity
    assert room.created_at == T0
    assert room.expires_at == T0 + POLICY.max_lifetime_s
    assert room.empty_since == T0
    assert room.members == ()
    assert room.host_id is None
    assert room.slow_mode_s == 0
    assert room.paused is False


def test_topic_is_normalised() -> None:
    room = alive(decide(None, _create(topic="  Ｓｌｅｅｐ \u3000 and\u00a0worry "), POLICY))
    assert room.topic == "Sleep and worry"


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "   ",
        "x" * 65,
        "tab\there",
        "bad\u202etopic",
        "zero\u200bwidth",
        "\u3164\u3164",
        "!!!",
        "a\x00b",
    ],
)
def test_bad_topics_refused(topic: str) -> None:
    r = refused(decide(None, _create(topic=topic), POLICY), RefusalCode.invalid_topic)
    if topic.strip():
        assert topic not in r.message


def test_listed_room_needs_topic() -> None:
    refused(decide(None, _create(topic=None), POLICY), RefusalCode.invalid_topic)


def test_unlisted_room_may_skip_topic_but_needs_join_key() -> None:
    cmd = _create(visibility=Visibility.unlisted, topic=None)
    refused(decide(None, cmd, POLICY), RefusalCode.invalid_join_key)
    refused(decide(None, replace(cmd, join_key=b""), POLICY), RefusalCode.invalid_join_key)
    refused(decide(None, replace(cmd, join_key=b"k" * 257), POLICY), RefusalCode.invalid_join_key)
    room = alive(decide(None, replace(cmd, join_key=b"k" * 32), POLICY))
    assert room.join_key == b"k" * 32


def test_listed_room_must_not_have_join_key() -> None:
    refused(decide(None, _create(join_key=b"k"), POLICY), RefusalCode.invalid_join_key)


@pytest.mark.parametrize("capacity", [0, 1, 501, -5])
def test_capacity_outside_policy_refused(capacity: int) -> None:
    refused(decide(None, _create(capacity=capacity), POLICY), RefusalCode.invalid_capacity)


@pytest.mark.parametrize("capacity", [2, 500, 17])
def test_capacity_inside_policy_accepted(capacity: int) -> None:
    room = alive(decide(None, _create(capacity=capacity), POLICY))
    assert room.capacity == capacity


def test_title_size_limit() -> None:
    refused(decide(None, _create(title_ct=b"x" * 1025), POLICY), RefusalCode.invalid_title)
    ok(decide(None, _create(title_ct=b"x" * 1024), POLICY))


def test_session_requires_host_seat() -> None:
    refused(decide(None, _create(kind=RoomKind.session), POLICY), RefusalCode.host_required)
    room = alive(decide(None, _create(kind=RoomKind.session, host_id=HOST), POLICY))
    assert room.host_id == HOST


def test_create_over_existing_room_refused() -> None:
    refused(decide(create(), _create(), POLICY), RefusalCode.room_exists)


def test_tick_before_due_changes_nothing() -> None:
    room = create()
    d = ok(decide(room, Tick(T0 + POLICY.empty_grace_s - 0.001), POLICY))
    assert d.room is room
    assert d.events == ()


def test_never_joined_room_disappears_after_grace() -> None:
    room = create()
    assert room.next_expiry(POLICY) == T0 + POLICY.empty_grace_s
    d = ok(decide(room, Tick(T0 + POLICY.empty_grace_s), POLICY))
    assert d.room is None
    assert d.events == (RoomEnded(EndReason.empty),)


def test_empty_room_grace_counts_from_last_leave() -> None:
    room = joined(create(), "a")
    assert room.empty_since is None
    assert room.next_expiry(POLICY) == room.expires_at
    left_at = T0 + 100
    room = alive(decide(room, Leave("a", left_at), POLICY))
    assert room.empty_since == left_at
    assert ok(decide(room, Tick(left_at + 599), POLICY)).room is room
    assert ok(decide(room, Tick(left_at + 600), POLICY)).events == (RoomEnded(EndReason.empty),)


def test_occupied_room_ends_at_lifetime() -> None:
    room = joined(create(), "a")
    d = ok(decide(room, Tick(room.expires_at), POLICY))
    assert d.room is None
    assert d.events == (RoomEnded(EndReason.lifetime),)


def test_lifetime_wins_when_both_due() -> None:
    policy = RoomPolicy(empty_grace_s=10, max_lifetime_s=10)
    room = create(policy=policy)
    assert ok(decide(room, Tick(T0 + 10), policy)).events == (RoomEnded(EndReason.lifetime),)


def test_due_room_refuses_other_commands_before_tick() -> None:
    room = joined(create(), "a")
    refused(decide(room, Leave("a", room.expires_at + 1), POLICY), RefusalCode.room_ended)


def test_room_in_ended_state_accepts_nothing() -> None:
    room = replace(joined(create(), "a"), state=RoomState.ended)
    refused(decide(room, Leave("a", T0 + 2), POLICY), RefusalCode.room_ended)
    d = ok(decide(room, Tick(T0 + 2), POLICY))
    assert d == ok(decide(room, Tick(T0 + 3), POLICY))
    assert d.room is None
    assert d.events == ()


def test_gone_room_accepts_nothing_but_create() -> None:
    refused(decide(None, Tick(T0), POLICY), RefusalCode.room_not_found)
    refused(decide(None, Leave("a", T0), POLICY), RefusalCode.room_not_found)


def test_host_ends_room() -> None:
    room = joined(create(kind=RoomKind.session), HOST, "a")
    refused(decide(room, End("a", T0 + 2), POLICY), RefusalCode.forbidden)
    refused(decide(room, End("zz", T0 + 2), POLICY), RefusalCode.not_member)
    d = ok(decide(room, End(HOST, T0 + 2), POLICY))
    assert d.room is None
    assert d.events == (RoomEnded(EndReason.ended_by_host),)


def test_moderator_may_end_peer_room_but_not_session() -> None:
    peer = joined(create(), "a")
    member = peer.member("a")
    assert member is not None
    peer = replace(peer, members=(replace(member, role=Role.moderator),))
    assert ok(decide(peer, End("a", T0 + 2), POLICY)).room is None
    session = joined(create(kind=RoomKind.session), HOST, "m")
    host, mod = session.members
    session = replace(session, members=(host, replace(mod, role=Role.moderator)))
    refused(decide(session, End("m", T0 + 2), POLICY), RefusalCode.forbidden)


def test_directory_entry_for_listed_room_only() -> None:
    room = joined(create(), "a", "b")
    entry = directory_entry(room)
    assert entry is not None
    assert (entry.room_id, entry.topic, entry.kind, entry.member_count, entry.created_at) == (
        "room-1",
        "Anxiety support",
        RoomKind.peer,
        2,
        T0,
    )
    assert not any(m.pseudonym in repr(entry) for m in room.members)
    assert directory_entry(create(visibility=Visibility.unlisted)) is None
    assert directory_entry(replace(room, state=RoomState.ended)) is None
