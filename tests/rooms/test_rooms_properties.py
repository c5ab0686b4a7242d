"""Stateful property tests: random command sequences never break the room invariants.

The machine drives one room through `decide` with arbitrary commands (valid or
not, from members and strangers) while time moves forward, and after every step
checks the invariants the rest of the system relies on.

Documented exception to "a session room always has a host": the host may leave
or drop (the session stays open so they can rejoin); until then the room has
members and no host, but nobody new may join it (`host_absent`).
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rooms import (
    CheckSend,
    ClearPin,
    Command,
    CreateRoom,
    Decision,
    Disconnect,
    End,
    EndReason,
    Join,
    Leave,
    Lock,
    MemberLeft,
    Mute,
    Refusal,
    RefusalCode,
    Remove,
    Rename,
    Role,
    Room,
    RoomEnded,
    RoomKind,
    RoomPolicy,
    SetDuration,
    SetPaused,
    SetPin,
    SetRole,
    SetSlowMode,
    Tick,
    Unlock,
    Unmute,
    Visibility,
    decide,
)
from rooms.skeleton import compact

POLICY = RoomPolicy(empty_grace_s=60.0, max_lifetime_s=3600.0, max_capacity=6)
T0 = 1_000_000.0
IDS = st.sampled_from(["h", "h", "a", "b", "c", "d", "e"])
NICKS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "Calm Otter",
            "calm otter",
            "CaIm Otter",
            "Саlm Оtter",
            "Amber Alpaca",
            "Amber A1paca",
            "Therapist",
            "Dr Who",
            "Sam",
            "sam",
            "x",
            "Zed\u200d",
            "Quiet Reader",
        ]
    ),
    st.text(max_size=12),
)
STEPS = st.sampled_from([0.0, 0.5, 1.0, 1.0, 5.0, 5.0, 30.0, 59.0, 60.0, 61.0, 600.0, 1800.0])
CAPACITIES = st.sampled_from([None, 2, 3, 4, 5, 6, 6, 1, 7])


class RoomMachine(RuleBasedStateMachine):
    """Drives one room through arbitrary commands and checks it after each."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.room: Room | None = None
        self.host_left = False  # a host departed and no host has been present since

    # -- the one way state changes -------------------------------------------------

    def step(self, command: Command) -> Decision | Refusal:
        before = self.room
        outcome = decide(before, command, POLICY)
        assert isinstance(outcome, Decision | Refusal)
        if before is None and not isinstance(command, CreateRoom):
            assert isinstance(outcome, Refusal)
            assert outcome.code is RefusalCode.room_not_found
        if isinstance(outcome, Refusal):
            assert outcome.code in RefusalCode
            return outcome
        if isinstance(command, CheckSend):
            assert outcome.room is before
            assert outcome.events == ()
        after = outcome.room
        if after is None:
            assert before is not None
            assert len(outcome.events) <= 1
            assert all(isinstance(e, RoomEnded) for e in outcome.events)
        elif before is not None:
            self._check_transition(before, after, outcome)
        self.room = after
        self._track_host(before, after)
        return outcome

    def _check_transition(self, before: Room, after: Room, outcome: Decision) -> None:
        left = [e for e in outcome.events if isinstance(e, MemberLeft)]
        assert after.epoch == before.epoch + len(left)  # never decreases; +1 per departure
        assert len(left) <= 1
        for event in left:
            assert event.epoch == after.epoch
            assert before.member(event.member_id) is not None
            assert after.member(event.member_id) is None
            # A departed member can never send again, whatever epoch they claim.
            for epoch in (before.epoch, after.epoch):
                check = decide(after, CheckSend(event.member_id, epoch, self.now), POLICY)
                assert isinstance(check, Refusal)
        # No surviving room is past its lifetime or its empty grace.
        assert self.now < after.next_expiry(POLICY)
        assert self.now < after.created_at + POLICY.max_lifetime_s

    def _track_host(self, before: Room | None, after: Room | None) -> None:
        if after is None or after.host_present():
            self.host_left = False
        elif before is not None and before.host_present():
            self.host_left = True

    def member_ids(self) -> list[str]:
        return [m.member_id for m in self.room.members] if self.room else []

    # -- rules ---------------------------------------------------------------------

    @initialize(
        kind=st.sampled_from(RoomKind),
        visibility=st.sampled_from(Visibility),
        capacity=CAPACITIES,
        owner=st.booleans(),
    )
    def create(
        self, kind: RoomKind, visibility: Visibility, capacity: int | None, owner: bool
    ) -> None:
        self.recreate(kind, visibility, capacity, owner)
        for i, member_id in enumerate(("h", "a")):
            self.step(Join(member_id, b"card", b"tok", None, i, True, self.now))

    @rule(
        kind=st.sampled_from(RoomKind),
        visibility=st.sampled_from(Visibility),
        capacity=CAPACITIES,
        owner=st.booleans(),
    )
    @precondition(lambda self: self.room is None)
    def recreate(
        self, kind: RoomKind, visibility: Visibility, capacity: int | None, owner: bool
    ) -> None:
        key = b"k" * 32 if visibility is Visibility.unlisted else None
        host = "h" if owner or kind is RoomKind.session else None
        cmd = CreateRoom("r", kind, visibility, "Topic", None, key, capacity, self.now, host)
        self.step(cmd)
        if self.room is not None:  # creating over an existing room is always refused
            again = decide(self.room, cmd, POLICY)
            assert isinstance(again, Refusal)
            assert again.code is RefusalCode.room_exists

    @rule(dt=STEPS)
    def wait(self, dt: float) -> None:
        self.now += dt

    @rule(
        member_id=IDS,
        nickname=NICKS,
        entropy=st.integers(),
        proof=st.sampled_from([None, False, True, True]),
    )
    def join(self, member_id: str, nickname: str | None, entropy: int, proof: bool | None) -> None:
        self.step(Join(member_id, b"card", b"tok", nickname, entropy, proof, self.now))

    @rule(member_id=IDS, entropy=st.integers(0, 5))
    def join_plainly(self, member_id: str, entropy: int) -> None:
        self.step(Join(member_id, b"card", b"tok", None, entropy, True, self.now))

    @rule(subject=IDS, role=st.sampled_from(Role))
    def host_sets_role(self, subject: str, role: Role) -> None:
        self.step(SetRole("h", subject, role, self.now))

    @rule(subject=IDS, duration=st.sampled_from([None, 1.0, 30.0]))
    def host_moderates(self, subject: str, duration: float | None) -> None:
        self.step(Mute("h", subject, duration, self.now))
        self.step(Remove("h", subject, self.now))

    @rule(member_id=IDS)
    def leave(self, member_id: str) -> None:
        self.step(Leave(member_id, self.now))

    @rule(member_id=IDS, lapsed=st.booleans())
    def disconnect(self, member_id: str, lapsed: bool) -> None:
        self.step(Disconnect(member_id, self.now, lapsed))

    @rule(actor=IDS, subject=IDS)
    def remove(self, actor: str, subject: str) -> None:
        self.step(Remove(actor, subject, self.now))

    @rule(member_id=IDS, nickname=NICKS.filter(lambda n: n is not None))
    def rename(self, member_id: str, nickname: str) -> None:
        self.step(Rename(member_id, nickname, self.now))

    @rule(actor=IDS, subject=IDS, role=st.sampled_from(Role))
    def set_role(self, actor: str, subject: str, role: Role) -> None:
        self.step(SetRole(actor, subject, role, self.now))

    @rule(
        actor=IDS,
        subject=IDS,
        duration=st.one_of(st.none(), st.sampled_from([-1.0, 0.0, 1.0, 30.0, math.inf, math.nan])),
    )
    def mute(self, actor: str, subject: str, duration: float | None) -> None:
        self.step(Mute(actor, subject, duration, self.now))

    @rule(actor=IDS, subject=IDS)
    def unmute(self, actor: str, subject: str) -> None:
        self.step(Unmute(actor, subject, self.now))

    @rule(actor=IDS, on=st.booleans())
    def lock(self, actor: str, on: bool) -> None:
        self.step(Lock(actor, self.now) if on else Unlock(actor, self.now))

    @rule(actor=IDS, on=st.booleans(), slow=st.integers(-1, 4000))
    def settings(self, actor: str, on: bool, slow: int) -> None:
        self.step(SetPaused(actor, on, self.now))
        self.step(SetSlowMode(actor, slow, self.now))

    @rule(actor=IDS, duration=st.sampled_from([-1.0, 0.0, 1.0, 90.0, 1800.0, 5000.0, math.nan]))
    def set_duration(self, actor: str, duration: float) -> None:
        outcome = self.step(SetDuration(actor, duration, self.now))
        if isinstance(outcome, Decision) and outcome.room is not None:
            assert outcome.room.duration_s == duration
            assert outcome.room.ends_at is not None and outcome.room.ends_at > self.now

    @rule(actor=IDS, seq=st.integers(1, 20))
    def pin(self, actor: str, seq: int) -> None:
        before = self.room.pinned if self.room else None
        outcome = self.step(SetPin(actor, seq, b"push", self.now))
        if isinstance(outcome, Decision) and outcome.room is not None:
            after = outcome.room.pinned
            assert after is not None and outcome.events == ()
            assert after.seq == max(seq, before.seq if before else 0)  # the newest pin wins

    @rule(actor=IDS)
    def unpin(self, actor: str) -> None:
        outcome = self.step(ClearPin(actor, self.now))
        if isinstance(outcome, Decision) and outcome.room is not None:
            assert outcome.room.pinned is None

    @rule(actor=IDS)
    def end(self, actor: str) -> None:
        outcome = self.step(End(actor, self.now))
        if isinstance(outcome, Decision):
            assert outcome.events == (RoomEnded(EndReason.ended_by_host),)

    @rule(member_id=IDS, offset=st.integers(-2, 2))
    def check_send(self, member_id: str, offset: int) -> None:
        room = self.room
        epoch = (room.epoch if room else 1) + offset
        outcome = self.step(CheckSend(member_id, epoch, self.now))
        if isinstance(outcome, Decision):
            assert room is not None
            member = room.member(member_id)
            assert member is not None
            assert offset == 0
            assert not member.is_muted(self.now)
            assert not room.paused or member.role is not Role.member

    @rule()
    def tick(self) -> None:
        room = self.room
        outcome = self.step(Tick(self.now))
        if room is not None:
            assert isinstance(outcome, Decision)
            assert (outcome.room is None) == (self.now >= room.next_expiry(POLICY))

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def room_is_consistent(self) -> None:
        room = self.room
        if room is None:
            return
        names = room.pseudonyms()
        assert len({n.casefold() for n in names}) == len(names)
        assert len({compact(n) for n in names}) == len(names)  # no look-alikes either
        assert len(room.members) <= room.capacity
        assert len({m.member_id for m in room.members}) == len(room.members)
        assert room.epoch >= 1
        assert room.expires_at == room.created_at + POLICY.max_lifetime_s
        assert (room.empty_since is None) == bool(room.members)
        if room.kind is RoomKind.session and room.members and not room.host_present():
            assert self.host_left
        if room.ends_at is not None:
            assert room.ends_at <= room.expires_at  # a session never outlives the room
        hosts = [m for m in room.members if m.role is Role.host]
        assert all(m.member_id == room.host_id or room.host_id is not None for m in hosts)

    @invariant()
    def expiry_is_exact(self) -> None:
        room = self.room
        if room is None:
            return
        due = room.next_expiry(POLICY)
        just_before = decide(room, Tick(math.nextafter(due, -math.inf)), POLICY)
        assert isinstance(just_before, Decision)
        assert just_before.room is room
        at = decide(room, Tick(due), POLICY)
        assert isinstance(at, Decision)
        assert at.room is None
        if due >= room.expires_at:
            reason = EndReason.lifetime
        elif room.ends_at is not None and due >= room.ends_at:
            reason = EndReason.time_up
        else:
            reason = EndReason.empty
        assert at.events == (RoomEnded(reason),)


RoomMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRoomMachine = RoomMachine.TestCase
