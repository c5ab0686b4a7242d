"""Every seam keeps the guarantee its docstring in `chatserver/ports.py` states, on every backend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatserver.backends.redis.bus import RedisRoomBus
from chatserver.ports import (
    AppendRefused,
    Duplicate,
    EnvelopeGuard,
    Quota,
    RoomBus,
    RoomStore,
    WireEvent,
)
from rooms import Room, RoomKind, RoomState, Visibility
from tests.contracts.conftest import MAX_EVENTS, Backend

ROOM = "R" * 21 + "A"


def room(room_id: str = ROOM, listed: bool = True, epoch: int = 1) -> Room:
    return Room(
        room_id=room_id,
        kind=RoomKind.peer,
        visibility=Visibility.listed if listed else Visibility.unlisted,
        topic="topic",
        title_ct=None,
        join_key=None,
        state=RoomState.open,
        epoch=epoch,
        capacity=10,
        created_at=1.0,
        expires_at=2.0,
        empty_since=None,
    )


class Recorder:
    """Collects what a bus delivers to its node (a `BusEvents`)."""

    def __init__(self, bus: RoomBus) -> None:
        self.room: list[tuple[str, WireEvent]] = []
        self.direct: list[tuple[str, str, WireEvent]] = []
        self.lost_rooms: list[tuple[str, int]] = []
        self.gaps: list[str] = []
        self.resubscriptions = 0
        bus.set_events(self)

    async def room_event(self, room_id: str, event: WireEvent) -> None:
        self.room.append((room_id, event))

    async def lost(self, room_id: str, last_seq: int) -> None:
        self.lost_rooms.append((room_id, last_seq))

    async def direct_event(self, room_id: str, member_id: str, event: WireEvent) -> None:
        self.direct.append((room_id, member_id, event))

    async def gap(self, room_id: str) -> None:
        self.gaps.append(room_id)

    async def resubscribed(self) -> None:
        self.resubscriptions += 1

    async def wait(self, count: int, attr: str = "room") -> list[Any]:
        for _ in range(200):
            if len(getattr(self, attr)) >= count:
                break
            await asyncio.sleep(0.01)
        return list(getattr(self, attr))


def msg(n: int) -> WireEvent:
    return {"t": "msg", "room_id": ROOM, "ts": 1000 + n, "env": bytes([n % 256]) * 4}


def guard(
    index: int,
    epoch: int = 1,
    key_id: int = 7,
    digest: bytes = b"d",
    state_version: int | None = None,
    quotas: tuple[Quota, ...] = (),
) -> EnvelopeGuard:
    return EnvelopeGuard(
        epoch=epoch,
        sender_id="S",
        key_id=key_id,
        index=index,
        digest=digest * 32,
        state_version=state_version,
        quotas=quotas,
    )


# Room store --------------------------------------------------------------------------------------


async def save(
    store: RoomStore, r: Room | None, version: int | None, due_at: float = 100.0
) -> bool:
    """A state change without events."""
    return await store.commit(r.room_id if r else ROOM, r, version, due_at) is not None


async def test_store_compare_and_set(backend: Backend) -> None:
    store = backend.store
    assert await store.load(ROOM) is None
    assert await save(store, room(), None)
    assert not await save(store, room(), None)  # create-only
    current = await store.load(ROOM)
    assert current is not None and current.room == room()
    assert await save(store, room(epoch=2), current.version)
    assert not await save(store, room(epoch=3), current.version)  # stale version
    latest = await store.load(ROOM)
    assert latest is not None and latest.room.epoch == 2


async def test_a_node_sees_what_another_node_wrote(backend: Backend) -> None:
    """Nodes keep the rooms they decoded; a load must still see another node's write or delete."""
    a, b = backend.store, backend.make_store()
    assert await save(a, room(), None)
    first = await a.load(ROOM)
    assert first is not None and await a.load(ROOM) == first  # unchanged: same answer
    assert await save(b, room(epoch=2), first.version)
    seen = await a.load(ROOM)
    assert seen is not None and seen.room.epoch == 2 and seen.version == first.version + 1
    assert not await save(a, room(epoch=9), first.version)  # a's old copy is stale
    assert await b.commit(ROOM, None, seen.version, 0.0) is not None
    assert await a.load(ROOM) is None


async def test_store_directory_and_deadlines(backend: Backend) -> None:
    store = backend.store
    await save(store, room(), None, due_at=50.0)
    await save(store, room("P" * 21 + "A", listed=False), None, due_at=500.0)
    assert [r.room_id for r in await store.listed()] == [ROOM]
    assert await store.due(100.0) == [ROOM]
    current = await store.load(ROOM)
    assert current is not None
    await store.commit(ROOM, None, current.version, 0.0)
    assert await store.load(ROOM) is None
    assert await store.listed() == []
    assert await store.due(100.0) == []


async def test_a_commit_is_the_state_and_its_events_in_one_step(backend: Backend) -> None:
    """Each commit's events are numbered right after the state they announce, and a load reads the
    state with the seq it corresponds to, whichever node committed (the join-order bug: a state
    saved by one node and its event appended after another node's)."""
    bus = await backend.bus()
    await bus.subscribe(ROOM)
    store, other = backend.store, backend.make_store()
    assert await store.commit(ROOM, room(), None, 100.0, [msg(0)], set_epoch=1) == 1
    assert await bus.append(ROOM, msg(1)) == 2  # an envelope: no state change
    current = await store.load(ROOM)
    assert current is not None and (current.room.epoch, current.seq) == (1, 2)
    # Two writers race from the same version: exactly one commits, its events right after.
    results = await asyncio.gather(
        store.commit(ROOM, room(epoch=2), current.version, 100.0, [msg(2), msg(3)], set_epoch=2),
        other.commit(ROOM, room(epoch=3), current.version, 100.0, [msg(4)], set_epoch=3),
    )
    winner = [r for r in results if r is not None]
    assert len(winner) == 1
    after = await other.load(ROOM)
    assert after is not None and after.seq == winner[0]
    assert after.room.epoch in (2, 3) and after.version == current.version + 1
    events = await bus.since(ROOM, 2)
    assert events is not None
    expected = [2, 3] if after.room.epoch == 2 else [4]
    assert [e["ts"] - 1000 for e in events] == expected
    assert [e["seq"] for e in events] == list(range(3, 3 + len(expected)))
    # Unchanged state with an event: the version is checked and kept.
    kept = await store.commit(ROOM, after.room, after.version, 100.0, [msg(5)], keep=True)
    assert kept == after.seq + 1
    assert (
        await store.commit(ROOM, after.room, after.version - 1, 100.0, [msg(6)], keep=True) is None
    )
    final = await store.load(ROOM)
    assert final is not None and (final.version, final.seq) == (after.version, kept)


# Room bus ----------------------------------------------------------------------------------------


async def test_append_orders_without_holes_and_recovers(backend: Backend) -> None:
    bus = await backend.bus()
    seqs = [await bus.append(ROOM, msg(i)) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert await bus.last_seq(ROOM) == 5
    recovered = await bus.since(ROOM, 2)
    assert recovered is not None
    assert [e["seq"] for e in recovered] == [3, 4, 5]
    assert recovered[0]["env"] == msg(2)["env"]
    assert await bus.since(ROOM, 5) == []
    assert await bus.since(ROOM, 9) is None  # claims to have seen the future: resync


async def test_recovery_is_whole_while_another_node_appends(backend: Backend) -> None:
    """A resume reads the sequence, then the log; appends landing in between must not turn a
    recoverable gap into "lost" (a resume with a gap)."""
    reader, writer = await backend.bus(), await backend.bus()
    for i in range(5):
        await writer.append(ROOM, msg(i))

    async def append_more() -> None:
        for i in range(5, MAX_EVENTS - 5):
            await writer.append(ROOM, msg(i))

    appending = asyncio.create_task(append_more())
    reads = 0
    while not appending.done():
        recovered = await reader.since(ROOM, 2)
        assert recovered is not None
        seqs = [e["seq"] for e in recovered]
        assert seqs == list(range(3, 3 + len(seqs)))
        reads += 1
        await asyncio.sleep(0)  # let the writer run (the memory bus never yields by itself)
    await appending
    assert reads >= 1


async def test_recovery_buffer_is_capped_and_expires(backend: Backend) -> None:
    bus = await backend.bus()
    for i in range(MAX_EVENTS * 3):
        await bus.append(ROOM, msg(i))
    assert await bus.since(ROOM, 0) is None  # trimmed by count: a gap
    recent = await bus.since(ROOM, MAX_EVENTS * 3 - 5)
    assert recent is not None and len(recent) == 5
    backend.clock.advance(121)
    await bus.append(ROOM, msg(999))
    assert await bus.since(ROOM, MAX_EVENTS * 3 - 5) is None  # older than the TTL


async def test_guard_refuses_stale_epochs_and_replays_and_answers_retries(backend: Backend) -> None:
    bus = await backend.bus()
    await bus.append(ROOM, {"t": "member.joined", "room_id": ROOM, "ts": 1}, set_epoch=1)
    first = await bus.append(ROOM, msg(1), guard=guard(0))
    assert first == 2
    assert await bus.append(ROOM, msg(1), guard=guard(0)) == Duplicate(2, 1001)
    with pytest.raises(AppendRefused) as replay:
        await bus.append(ROOM, msg(2), guard=guard(0, digest=b"e"))
    assert replay.value.code == "replay"
    assert await bus.append(ROOM, msg(3), guard=guard(5)) == 3  # skipping ahead is fine
    with pytest.raises(AppendRefused):
        await bus.append(ROOM, msg(4), guard=guard(4, digest=b"f"))
    # Another chain of the same sender has its own indexes.
    assert await bus.append(ROOM, msg(5), guard=guard(0, key_id=8)) == 4
    await bus.append(ROOM, {"t": "member.left", "room_id": ROOM, "ts": 2}, set_epoch=2)
    with pytest.raises(AppendRefused) as stale:
        await bus.append(ROOM, msg(6), guard=guard(6, epoch=1, digest=b"g"))
    assert stale.value.code == "stale_epoch"
    # The epoch never goes back, even if an older decision's events land late.
    await bus.append(ROOM, {"t": "member.joined", "room_id": ROOM, "ts": 3}, set_epoch=1)
    with pytest.raises(AppendRefused):
        await bus.append(ROOM, msg(7), guard=guard(7, epoch=1, digest=b"h"))
    assert await bus.append(ROOM, msg(8), guard=guard(8, epoch=2, digest=b"i")) == 7


async def test_guard_appends_only_on_the_state_the_sender_was_checked_against(
    backend: Backend,
) -> None:
    bus, store = await backend.bus(), backend.store
    await save(store, room(), None)
    held = await store.load_held(ROOM)
    assert held is not None and held == await store.load(ROOM)
    first = await bus.append(ROOM, msg(1), guard=guard(0, state_version=held.version))
    # Another node changes the room: this node's copy is behind, and an append naming it is
    # refused with nothing appended.
    assert await save(backend.make_store(), room(), held.version)
    with pytest.raises(AppendRefused) as stale:
        await bus.append(ROOM, msg(2), guard=guard(1, digest=b"b", state_version=held.version))
    assert stale.value.code == "stale_state"
    assert await bus.last_seq(ROOM) == first
    # A retry of an envelope already accepted is still answered as one.
    again = await bus.append(ROOM, msg(1), guard=guard(0, state_version=held.version))
    assert again == Duplicate(first, 1001)
    fresh = await store.load(ROOM)
    assert fresh is not None and fresh.version == held.version + 1
    assert await bus.append(ROOM, msg(2), guard=guard(1, state_version=fresh.version)) == first + 1
    # A room that is gone is never "the same version".
    assert await save(store, None, fresh.version)
    with pytest.raises(AppendRefused) as gone:
        await bus.append(ROOM, msg(3), guard=guard(2, state_version=fresh.version))
    assert gone.value.code == "stale_state"


async def test_guard_quotas_are_taken_all_or_none_with_the_append(backend: Backend) -> None:
    bus = await backend.bus()
    member = Quota("messages", "m:abc", 1.0, 2)
    slow = Quota("slow_mode", "slow:abc", 0.1, 1)
    assert await bus.append(ROOM, msg(1), guard=guard(0, quotas=(member, slow))) == 1
    with pytest.raises(AppendRefused) as refused:
        await bus.append(ROOM, msg(2), guard=guard(1, quotas=(member, slow)))
    assert refused.value.code == "rate_limited"
    assert refused.value.quota == "slow_mode"
    assert 9.0 < refused.value.wait_s <= 10.0
    assert await bus.last_seq(ROOM) == 1
    # The refusal took no token: the member's bucket still holds its second one.
    assert await bus.append(ROOM, msg(3), guard=guard(2, quotas=(member,))) == 2
    with pytest.raises(AppendRefused) as empty:
        await bus.append(ROOM, msg(4), guard=guard(3, quotas=(member,)))
    assert empty.value.quota == "messages"
    assert 0.0 < empty.value.wait_s <= 1.0
    # A duplicate costs nothing; a quota of another room is another bucket.
    assert await bus.append(ROOM, msg(3), guard=guard(2, quotas=(member,))) == Duplicate(2, 1003)
    other = "O" * 21 + "A"
    assert await bus.append(other, msg(5), guard=guard(0, quotas=(member,))) == 1
    backend.clock.advance(10.0)
    assert await bus.append(ROOM, msg(6), guard=guard(4, quotas=(member, slow))) == 3


async def test_subscribed_nodes_receive_in_order_and_others_nothing(backend: Backend) -> None:
    holder = await backend.bus()
    other = await backend.bus()
    got = Recorder(holder)
    await holder.subscribe(ROOM)
    if holder is not other:
        ignored = Recorder(other)
    for i in range(20):
        await other.append(ROOM, msg(i))
    events = await got.wait(20)
    assert [e["seq"] for _, e in events] == list(range(1, 21))
    assert all(room_id == ROOM for room_id, _ in events)
    if isinstance(other, RedisRoomBus):
        await asyncio.sleep(0.1)
        assert ignored.room == []
        assert other.messages_read == 0  # it decoded none of the room's traffic
    await holder.unsubscribe(ROOM)
    await other.append(ROOM, msg(99))
    await asyncio.sleep(0.1)
    assert len(got.room) == 20


async def test_a_nodes_own_appends_interleaved_with_anothers_arrive_once_in_order(
    backend: Backend,
) -> None:
    # On Redis, a node delivers its own append from the script's reply when it is the room's next
    # event there; the echo, and another node's appends landing in between, must not break the
    # order or deliver anything twice.
    mine = await backend.bus()
    theirs = await backend.bus()
    got = Recorder(mine)
    await mine.subscribe(ROOM)

    async def send(bus: RoomBus, start: int) -> None:
        for i in range(start, start + 40):
            await bus.append(ROOM, msg(i))

    await asyncio.gather(send(mine, 0), send(theirs, 100), send(mine, 200))
    await got.wait(120)
    await asyncio.sleep(0.2)  # the last echoes
    assert [e["seq"] for _, e in got.room] == list(range(1, 121))
    if isinstance(mine, RedisRoomBus):
        assert mine.messages_read >= 40  # the other node's events came through the listener


async def test_volatile_events_reach_subscribers_without_a_sequence(backend: Backend) -> None:
    bus = await backend.bus()
    got = Recorder(bus)
    await bus.subscribe(ROOM)
    await bus.publish_volatile(ROOM, {"t": "typing", "room_id": ROOM, "on": True})
    events = await got.wait(1)
    assert events == [(ROOM, {"t": "typing", "room_id": ROOM, "on": True})]
    assert await bus.last_seq(ROOM) == 0


async def test_direct_events_reach_the_holder_and_the_mailbox(backend: Backend) -> None:
    bus = await backend.bus()
    got = Recorder(bus)
    node_id = getattr(bus, "_node_channel", "node").rsplit(":", 1)[-1]
    await backend.presence.touch(ROOM, "M", node_id, deadline=backend.clock.now() + 30)
    await bus.send_direct(ROOM, "M", {"t": "key", "room_id": ROOM, "skd": b"sealed"})
    direct = await got.wait(1, "direct")
    assert direct == [(ROOM, "M", {"t": "key", "room_id": ROOM, "skd": b"sealed"})]
    assert await bus.mailbox(ROOM, "M") == [{"t": "key", "room_id": ROOM, "skd": b"sealed"}]
    assert await bus.mailbox(ROOM, "N") == []
    backend.clock.advance(121)
    assert await bus.mailbox(ROOM, "M") == []


def node_of(bus: RoomBus) -> str:
    return str(getattr(bus, "_node_channel", "node")).rsplit(":", 1)[-1]


def key_for(member_id: str) -> WireEvent:
    return {"t": "key", "room_id": ROOM, "skd": f"sealed for {member_id}".encode()}


async def test_direct_batches_reach_each_holder_and_every_mailbox(backend: Backend) -> None:
    """One `send_direct_many`: each member's event reaches the node holding it (and no other), and
    every member's mailbox keeps its own, held or not."""
    first, second = await backend.bus(), await backend.bus()
    got_first = Recorder(first)
    got_second = got_first if second is first else Recorder(second)
    deadline = backend.clock.now() + 30
    await backend.presence.touch(ROOM, "M", node_of(first), deadline=deadline)
    await backend.presence.touch(ROOM, "N", node_of(second), deadline=deadline)
    many = [f"P{i}" for i in range(100)]
    for member_id in many:
        await backend.presence.touch(ROOM, member_id, node_of(second), deadline=deadline)
    deliveries = [(m, key_for(m)) for m in ["M", "N", "O", *many]]  # nobody holds O
    await first.send_direct_many(ROOM, deliveries)
    await first.send_direct_many(ROOM, [])  # nothing to do
    if second is first:  # one node: it hears every event (the gateway keeps its local members)
        assert await got_first.wait(len(deliveries), "direct") == [
            (ROOM, m, e) for m, e in deliveries
        ]
    else:
        at_second = await got_second.wait(1 + len(many), "direct")
        assert sorted(at_second) == sorted((ROOM, m, key_for(m)) for m in ["N", *many])
        assert await got_first.wait(1, "direct") == [(ROOM, "M", key_for("M"))]
        await asyncio.sleep(0.1)
        assert len(got_first.direct) == 1 and len(got_second.direct) == 1 + len(many)
    for bus in (first, second):
        for member_id, event in deliveries:
            assert await bus.mailbox(ROOM, member_id) == [event]
    await second.send_direct(ROOM, "O", key_for("again"))  # the one-member form is the same
    assert await first.mailbox(ROOM, "O") == [key_for("O"), key_for("again")]
    await first.drop(ROOM)
    assert await first.mailbox(ROOM, "P7") == []


async def test_drop_forgets_the_room(backend: Backend) -> None:
    bus = await backend.bus()
    await bus.append(ROOM, msg(1), guard=guard(3))
    await bus.drop(ROOM)
    assert await bus.last_seq(ROOM) == 0
    assert await bus.append(ROOM, msg(1), guard=guard(3)) == 1


# Presence ----------------------------------------------------------------------------------------


async def test_presence_lapses_once(backend: Backend) -> None:
    presence = backend.presence
    now = backend.clock.now()
    await presence.touch(ROOM, "A", "n1", now + 10)
    await presence.touch(ROOM, "B", "n1", now + 30)
    assert await presence.holder(ROOM, "A") == "n1"
    await presence.touch(ROOM, "A", "n2", now + 10)  # resumed elsewhere
    assert await presence.holder(ROOM, "A") == "n2"
    assert await presence.claim_expired(now + 5) == []
    claims = await asyncio.gather(*(presence.claim_expired(now + 20) for _ in range(5)))
    assert sorted(c for claim in claims for c in claim) == [(ROOM, "A")]  # exactly one claimer
    assert await presence.holder(ROOM, "A") is None
    await presence.remove(ROOM, "B")
    assert await presence.claim_expired(now + 60) == []


async def test_a_heartbeat_moves_every_seat_at_once(backend: Backend) -> None:
    presence = backend.presence
    now = backend.clock.now()
    other = "Q" * 22
    await presence.touch_many([(ROOM, "A"), (ROOM, "B"), (other, "C")], "n1", now + 10)
    assert [await presence.holder(r, m) for r, m in ((ROOM, "A"), (other, "C"))] == ["n1", "n1"]
    await presence.touch_many([(ROOM, "A"), (other, "C")], "n2", now + 30)  # B is not touched
    assert await presence.holder(ROOM, "A") == "n2"
    assert await presence.claim_expired(now + 20) == [(ROOM, "B")]
    assert sorted(await presence.claim_expired(now + 40)) == sorted([(ROOM, "A"), (other, "C")])
    await presence.touch_many([], "n1", now)  # nothing to do


# Rate limiter ------------------------------------------------------------------------------------


async def test_rate_limiter_bucket(backend: Backend) -> None:
    limiter = backend.limiter
    now = 1000.0
    waits = [await limiter.hit("k", 2.0, 3, now) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.5)
    assert await limiter.hit("k", 2.0, 3, now + 0.5) == 0.0
    assert await limiter.hit("other", 2.0, 3, now) == 0.0


# Denylist ----------------------------------------------------------------------------------------


async def test_denylist_entries_expire(backend: Backend) -> None:
    lists = backend.denylist
    t = backend.clock.now()  # real wall-clock times: Redis expires the key itself too
    await lists.add("revoked", "cred-1", expires_at=t + 100)
    await lists.add("revoked", "cred-2", expires_at=t + 50)
    await lists.add("bans", "cred-1", expires_at=t + 100)
    assert await lists.contains("revoked", "cred-1", now=t + 10)
    assert not await lists.contains("revoked", "cred-3", now=t + 10)
    assert await lists.items("revoked", now=t + 10) == ["cred-2", "cred-1"]
    assert await lists.items("revoked", now=t + 60) == ["cred-1"]
    assert not await lists.contains("revoked", "cred-1", now=t + 100)
    await lists.remove("bans", "cred-1")
    assert await lists.items("bans", now=t + 10) == []


async def test_an_idle_rooms_buffer_expires(backend: Backend) -> None:
    bus = await backend.bus()
    for i in range(3):
        await bus.append(ROOM, msg(i))
    assert await bus.since(ROOM, 0) is not None
    if isinstance(bus, RedisRoomBus):
        # Redis expires the stream key itself after the buffer TTL (real time, not the test clock).
        ttl_ms = await bus._redis.pttl(bus._keys.room(ROOM, "log"))
        assert 0 < ttl_ms <= 120_000
    else:
        backend.clock.advance(121)
        await bus.expire_buffers()
        assert await bus.since(ROOM, 0) is None
    assert await bus.last_seq(ROOM) == 3  # the sequence outlives the buffer
