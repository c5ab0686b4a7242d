"""The refusal catalogue: stable, documented, and every code reachable."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import pytest
from rooms_helpers import HOST, POLICY, T0, create, join, joined, session_with_host

from rooms import (
    REFUSAL_DESCRIPTIONS,
    Admit,
    CheckSend,
    CreateRoom,
    Knock,
    Leave,
    Mute,
    Outcome,
    Refusal,
    RefusalCode,
    Remove,
    Room,
    RoomKind,
    RoomPolicy,
    RoomState,
    SetPin,
    Visibility,
    decide,
)


def _create(**kw: object) -> Outcome:
    cmd = CreateRoom("r", RoomKind.peer, Visibility.listed, "Topic", None, None, None, T0)
    return decide(None, replace(cmd, **kw), POLICY)  # type: ignore[arg-type]


SCENARIOS: dict[RefusalCode, Callable[[], Outcome]] = {
    RefusalCode.room_not_found: lambda: decide(None, Leave("a", T0), POLICY),
    RefusalCode.room_exists: lambda: decide(
        create(), CreateRoom("r", RoomKind.peer, Visibility.listed, "T", None, None, None, T0)
    ),
    RefusalCode.room_full: lambda: join(joined(create(capacity=2), "a", "b"), "c"),
    RefusalCode.room_locked: lambda: join(replace(create(), state=RoomState.locked), "a"),
    RefusalCode.room_ended: lambda: join(create(), "a", now=T0 + POLICY.empty_grace_s),
    RefusalCode.host_absent: lambda: join(create(kind=RoomKind.session), "a"),
    RefusalCode.host_required: lambda: _create(kind=RoomKind.session),
    RefusalCode.already_member: lambda: join(joined(create(), "a"), "a"),
    RefusalCode.not_member: lambda: decide(create(), Leave("a", T0), POLICY),
    RefusalCode.forbidden: lambda: decide(session_with_host("a", "b"), Remove("a", "b", T0)),
    RefusalCode.join_proof_required: lambda: join(
        create(visibility=Visibility.unlisted), "a", proof_ok=None
    ),
    RefusalCode.bad_proof: lambda: join(
        create(visibility=Visibility.unlisted), "a", proof_ok=False
    ),
    RefusalCode.nickname_invalid: lambda: join(create(), "a", nickname="\u200b"),
    RefusalCode.nickname_taken: lambda: join(
        joined(create(), "a", nickname="Ana"), "b", nickname="ANA"
    ),
    RefusalCode.nickname_reserved: lambda: join(create(), "a", nickname="M0derator"),
    RefusalCode.nickname_confusable: lambda: join(
        joined(create(), "a", nickname="Ana"), "b", nickname="Аna"
    ),
    RefusalCode.stale_epoch: lambda: decide(session_with_host(), CheckSend(HOST, 0, T0)),
    RefusalCode.muted: lambda: decide(
        decide(session_with_host("a"), Mute(HOST, "a", None, T0)).room,  # type: ignore[union-attr]
        CheckSend("a", 1, T0),
    ),
    RefusalCode.paused: lambda: decide(
        replace(session_with_host("a"), paused=True), CheckSend("a", 1, T0)
    ),
    RefusalCode.invalid_capacity: lambda: _create(capacity=1),
    RefusalCode.invalid_topic: lambda: _create(topic=None),
    RefusalCode.invalid_title: lambda: _create(title_ct=b"x" * 5000),
    RefusalCode.invalid_join_key: lambda: _create(visibility=Visibility.unlisted),
    RefusalCode.invalid_duration: lambda: decide(session_with_host("a"), Mute(HOST, "a", -5, T0)),
    RefusalCode.lobby_required: lambda: join(_lobby(), "a"),
    RefusalCode.not_waiting: lambda: decide(_lobby(), Admit(HOST, "a", b"sig", T0)),
    RefusalCode.not_started: lambda: decide(
        _knocked(_lobby(starts_at=T0 + 600)), Admit(HOST, "a", b"sig", T0 + 2)
    ),
    RefusalCode.lobby_full: lambda: _knock(
        _knocked(_lobby(), policy=replace(POLICY, max_waiting=1)),
        "b",
        policy=replace(POLICY, max_waiting=1),
    ),
    RefusalCode.banned: lambda: _knock(_lobby(), "a", banned=True),
    RefusalCode.rules_not_accepted: lambda: _knock(_lobby(rules=b"be kind"), "a", accepted=False),
    RefusalCode.qa_only: lambda: decide(
        replace(session_with_host("a"), qa=True), CheckSend("a", 1, T0)
    ),
    RefusalCode.invalid_schedule: lambda: _create(host_id=HOST, lobby=True, duration_s=-1.0),
    RefusalCode.invalid_rules: lambda: _create(host_id=HOST, lobby=True, rules=b"x" * 9000),
    RefusalCode.invalid_pin: lambda: decide(
        session_with_host("a"), SetPin(HOST, 5, b"x" * (POLICY.max_pin_bytes + 1), T0)
    ),
}


def _lobby(**kw: object) -> Room:
    cmd = CreateRoom(
        "r", RoomKind.session, Visibility.listed, "T", None, None, None, T0, HOST, lobby=True
    )
    room = decide(None, replace(cmd, **kw), POLICY).room  # type: ignore[arg-type,union-attr]
    return joined(room, HOST)


def _knock(
    room: Room,
    member_id: str,
    *,
    banned: bool = False,
    accepted: bool = True,
    policy: RoomPolicy = POLICY,
) -> Outcome:
    cmd = Knock(member_id, b"card", None, 1, True, accepted, banned, T0 + 1)
    return decide(room, cmd, policy)


def _knocked(room: Room, policy: RoomPolicy = POLICY) -> Room:
    outcome = _knock(room, "a", policy=policy)
    assert not isinstance(outcome, Refusal) and outcome.room is not None
    return outcome.room


def test_every_code_has_a_description_and_a_scenario() -> None:
    assert set(REFUSAL_DESCRIPTIONS) == set(RefusalCode)
    assert set(SCENARIOS) == set(RefusalCode)


def test_codes_are_stable_lower_snake() -> None:
    for code in RefusalCode:
        assert code.value == code.name
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code.value)
        assert REFUSAL_DESCRIPTIONS[code].endswith(".")


@pytest.mark.parametrize("code", list(RefusalCode))
def test_scenario_produces_code(code: RefusalCode) -> None:
    outcome = SCENARIOS[code]()
    assert isinstance(outcome, Refusal), outcome
    assert outcome.code is code
    assert outcome.message
