"""Builders shared by the rooms tests (plain functions, no I/O)."""

from __future__ import annotations

from rooms import (
    CreateRoom,
    Decision,
    Join,
    Outcome,
    Refusal,
    RefusalCode,
    Room,
    RoomKind,
    RoomPolicy,
    Visibility,
    decide,
)

T0 = 1_700_000_000.0
POLICY = RoomPolicy()
HOST = "host-1"


def ok(outcome: Outcome) -> Decision:
    """Assert the outcome is a Decision and return it."""
    assert isinstance(outcome, Decision), outcome
    return outcome


def alive(outcome: Outcome) -> Room:
    """Assert the outcome is a Decision that keeps the room, and return the room."""
    room = ok(outcome).room
    assert room is not None
    return room


def refused(outcome: Outcome, code: RefusalCode) -> Refusal:
    """Assert the outcome is a refusal with `code` and return it."""
    assert isinstance(outcome, Refusal), outcome
    assert outcome.code is code, outcome
    return outcome


def create(
    *,
    kind: RoomKind = RoomKind.peer,
    visibility: Visibility = Visibility.listed,
    topic: str | None = "Anxiety support",
    host_id: str | None = None,
    capacity: int | None = None,
    join_key: bytes | None = None,
    now: float = T0,
    policy: RoomPolicy = POLICY,
) -> Room:
    """A freshly created room (asserting creation succeeded)."""
    if visibility is Visibility.unlisted and join_key is None:
        join_key = b"k" * 32
    if kind is RoomKind.session and host_id is None:
        host_id = HOST
    cmd = CreateRoom("room-1", kind, visibility, topic, None, join_key, capacity, now, host_id)
    room = ok(decide(None, cmd, policy)).room
    assert room is not None
    return room


def join_cmd(
    member_id: str,
    *,
    nickname: str | None = None,
    entropy: int = 0,
    proof_ok: bool | None = True,
    now: float = T0 + 1,
) -> Join:
    """A Join command with sensible defaults."""
    return Join(member_id, b"card-" + member_id.encode(), b"tok", nickname, entropy, proof_ok, now)


def join(room: Room, member_id: str, policy: RoomPolicy = POLICY, **kwargs: object) -> Outcome:
    """Decide a join."""
    return decide(room, join_cmd(member_id, **kwargs), policy)  # type: ignore[arg-type]


def joined(room: Room, *member_ids: str, policy: RoomPolicy = POLICY, **kwargs: object) -> Room:
    """The room after these members joined successfully, in order."""
    for i, member_id in enumerate(member_ids):
        kw = {"entropy": i, **kwargs}
        new = ok(join(room, member_id, policy, **kw)).room
        assert new is not None
        room = new
    return room


def session_with_host(*others: str, capacity: int | None = None) -> Room:
    """A session room whose host (HOST) and then `others` have joined."""
    return joined(create(kind=RoomKind.session, capacity=capacity), HOST, *others)
