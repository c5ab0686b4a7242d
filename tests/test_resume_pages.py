"""Resume in pages: a member back from a busy room gets what it missed in bounded replies
(`room.resume`, then `room.catchup`), and the recovery buffer is bounded in bytes as well as in
events. Real nodes (memory and Redis), real clients, real E2EE."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack

from chatserver.backends.redis.bus import RedisRoomBus
from chatserver.client import (
    ChatClient,
    DecryptFailed,
    MemberJoined,
    Message,
    Reconnected,
    Room,
    RoomEvent,
)
from tests.conftest import RunningServer
from tests.members import TestMember
from tests.test_client import kill_transport, next_event, texts

PAGE_BYTES = 512 * 1024
BIG_TEXT = 60 * 1024  # padded to the largest bucket: a 65,746-byte envelope
# Rates out of the way: the sends go as fast as the node takes them, and a catch-up in pages of
# ~460 KB takes about a hundred room.catchup requests.
FAST = {
    "msg_rate_per_s": 10_000.0,
    "msg_burst": 10_000,
    "room_msg_rate_per_s": 10_000.0,
    "room_msg_burst": 10_000,
}


def encoded(value: Any) -> int:
    return len(msgpack.packb(value, use_bin_type=True))


def big(i: int) -> str:
    return f"{i:04d}:" + "x" * (BIG_TEXT - 5)


def hold_resume(client: ChatClient) -> tuple[asyncio.Event, dict[str, list[int]]]:
    """Spy on the client's calls: its next resume waits until the returned event is set, and the
    encoded size of every room.resume and room.catchup ack is recorded, by event."""
    released = asyncio.Event()
    sizes: dict[str, list[int]] = {"room.resume": [], "room.catchup": []}
    original: Callable[[str, dict[str, Any], float | None], Awaitable[Any]] = client._raw_call

    async def call(event: str, data: dict[str, Any], wait: float | None) -> Any:
        if event == "room.challenge":
            await released.wait()
        ack = await original(event, data, wait)
        if event in sizes:
            sizes[event].append(encoded(ack))
        return ack

    client._raw_call = call  # type: ignore[method-assign]
    return released, sizes


async def test_a_long_absence_is_caught_up_in_bounded_pages(make_server: Any, clients: Any) -> None:
    """800 messages of 60 KB (about 53 MB) while Alice is away: she gets every one, in order,
    and no reply she gets is larger than the page bound. Two senders of 400 each: a receiver
    keeps at most MAX_CHAINS_PER_SENDER (5) chains of a sender, and a chain rotates every 100
    messages, so more than 500 from one sender cannot all be opened after a resume (the resume
    hands the mailbox's keys over before the events, paged or not)."""
    server = await make_server(
        resume_page_bytes=PAGE_BYTES,
        buffer_max_events=1000,
        buffer_max_bytes=64 * 1024 * 1024,
        control_rate_per_s=100.0,
        control_burst=200,
        resume_grace_s=120.0,
        **FAST,
    )
    a_c = await clients(server.url, reconnect_delay=0.05)
    b_c, c_c = await clients(server.url), await clients(server.url)
    link = (await a_c.create_room()).link
    alice, bob, carol = await a_c.join(link), await b_c.join(link), await c_c.join(link)
    await next_event(alice, MemberJoined)
    await next_event(alice, MemberJoined)
    released, sizes = hold_resume(a_c)
    await kill_transport(server, alice)

    async def talk(who: Room, first: int) -> None:
        for i in range(first, first + 400):
            await who.send(big(i))

    await asyncio.gather(talk(bob, 0), talk(carol, 400))
    released.set()
    others: list[RoomEvent] = []
    got = await texts(alice, 800, timeout=30, others=others)
    assert not [e for e in others if isinstance(e, DecryptFailed)]
    assert sorted(m.text for m in got) == [big(i) for i in range(800)]
    for sender, first in ((bob, 0), (carol, 400)):
        mine = [m.text for m in got if m.sender_id == sender.member_id]
        assert mine == [big(i) for i in range(first, first + 400)]
    seqs = [m.seq for m in got]
    assert seqs == list(range(seqs[0], seqs[0] + 800))
    # Told once the catch-up is complete, after the events it brought.
    back = await next_event(alice, Reconnected)
    assert back == Reconnected(resumed=True, gap=False, member_id=alice.member_id)
    assert len(sizes["room.resume"]) == 1
    # 7 envelopes fit in a page of 512 KiB: the rest came in about 114 more pages.
    assert len(sizes["room.catchup"]) >= 800 // 8
    assert max(sizes["room.resume"] + sizes["room.catchup"]) <= PAGE_BYTES
    await bob.send("and live again")
    assert [m.text for m in await texts(alice, 1)] == ["and live again"]


async def test_a_byte_bounded_buffer_reports_the_gap(make_server: Any, clients: Any) -> None:
    """Five 60 KB messages do not fit a 200 KB buffer: the oldest went, so Alice's resume has a
    gap, and she goes on from the snapshot."""
    server = await make_server(buffer_max_bytes=200 * 1024, **FAST)
    a_c = await clients(server.url, reconnect_delay=0.05)
    b_c = await clients(server.url)
    link = (await a_c.create_room()).link
    alice, bob = await a_c.join(link), await b_c.join(link)
    await next_event(alice, MemberJoined)
    released, _ = hold_resume(a_c)
    last = alice.seq
    await kill_transport(server, alice)
    for i in range(5):
        await bob.send(big(i))
    assert await server.node.bus.since(alice.room_id, last) is None
    kept = await server.node.bus.since(
        alice.room_id, await server.node.bus.last_seq(alice.room_id) - 3
    )
    assert kept is not None and len(kept) == 3  # what fits is still there
    released.set()
    back = await next_event(alice, Reconnected, timeout=10)
    assert back.resumed and back.gap
    assert not [e for e in await drained(alice) if isinstance(e, Message)]
    await bob.send("after the gap")
    assert [m.text for m in await texts(alice, 1)] == ["after the gap"]


async def test_a_gap_during_the_catch_up_is_a_gap_on_resume(make_server: Any, clients: Any) -> None:
    """The buffer drops the rest of what Alice missed while she is between two pages: the
    catch-up page says `gap`, she goes on from the resume snapshot, and what was sent after
    her seat came back (pushes held while she caught up) still arrives, in order."""
    server = await make_server(
        resume_page_bytes=200 * 1024, buffer_max_bytes=600 * 1024, resume_grace_s=60.0, **FAST
    )
    a_c = await clients(server.url, reconnect_delay=0.05)
    b_c = await clients(server.url)
    link = (await a_c.create_room()).link
    alice, bob = await a_c.join(link), await b_c.join(link)
    await next_event(alice, MemberJoined)
    released, sizes = hold_resume(a_c)
    between = asyncio.Event()
    original = a_c._raw_call

    async def paused(event: str, data: dict[str, Any], wait: float | None) -> Any:
        if event == "room.catchup" and not between.is_set():
            between.set()
            await released_page.wait()
        return await original(event, data, wait)

    released_page = asyncio.Event()
    a_c._raw_call = paused  # type: ignore[method-assign]
    await kill_transport(server, alice)
    for i in range(8):
        await bob.send(big(i))
    released.set()
    await asyncio.wait_for(between.wait(), 10)
    for i in range(8, 16):
        await bob.send(big(i))  # live for Alice's seat, and pushing 3..7 out of the buffer
    released_page.set()
    others: list[RoomEvent] = []
    got = await texts(alice, 3 + 8, timeout=15, others=others)
    assert [m.text for m in got] == [big(i) for i in [0, 1, 2, *range(8, 16)]]
    back = next(e for e in [*others, *await drained(alice)] if isinstance(e, Reconnected))
    assert back == Reconnected(resumed=True, gap=True, member_id=alice.member_id)
    assert len(sizes["room.resume"]) == 1 and len(sizes["room.catchup"]) == 1
    await bob.send("and on")
    assert [m.text for m in await texts(alice, 1)] == ["and on"]


async def test_the_buffer_keeps_its_byte_total_in_step(make_server: Any) -> None:
    """Appends of every size, trimmed by bytes and by count: what `since` returns is always a
    contiguous tail within both bounds, paged as asked; on Redis the stored total is the sum
    of the stream's entries."""
    server = await make_server(buffer_max_bytes=40_000, buffer_max_events=50)
    bus, room_id = server.node.bus, "R" * 21 + "A"
    for i in range(300):
        await bus.append(
            room_id, {"t": "msg", "room_id": room_id, "ts": i, "env": b"e" * (i * 37 % 3000)}
        )
        if i % 25 == 0:
            await check_buffer(server, room_id)
    await check_buffer(server, room_id)
    last = await bus.last_seq(room_id)
    first = await bus.since(room_id, last - 10)
    assert first is not None and [e["seq"] for e in first] == list(range(last - 9, last + 1))
    page = await bus.since(room_id, last - 10, max_events=4)
    assert page is not None and [e["seq"] for e in page] == list(range(last - 9, last - 5))
    tight = await bus.since(room_id, last - 10, max_bytes=1)
    assert tight is not None and [e["seq"] for e in tight] == [last - 9]  # one, however large
    assert await bus.since(room_id, last) == []
    assert await bus.since(room_id, last + 1) is None
    if isinstance(bus, RedisRoomBus):
        # A stream written before the sizes list existed is counted once, then kept in step.
        await bus._redis.delete(bus._keys.room(room_id, "logsz"))
        await bus._redis.hset(bus._keys.room(room_id, "meta"), "bytes", 0)
        await bus.append(room_id, {"t": "msg", "room_id": room_id, "ts": 1, "env": b"e" * 2999})
        await check_buffer(server, room_id)


async def check_buffer(server: RunningServer, room_id: str) -> None:
    bus = server.node.bus
    last = await bus.last_seq(room_id)
    held: list[dict[str, Any]] = []
    for after in range(last - 1, -1, -1):
        events = await bus.since(room_id, after)
        if events is None:
            break
        held = events
    seqs = [e["seq"] for e in held]
    assert seqs == list(range(last - len(held) + 1, last + 1)) and 0 < len(held) <= 50
    blobs = [encoded({k: v for k, v in e.items() if k != "seq"}) for e in held]
    assert sum(blobs) <= 40_000
    if isinstance(bus, RedisRoomBus):
        meta = await bus._redis.hget(bus._keys.room(room_id, "meta"), "bytes")
        assert int(meta) == sum(blobs)
        sizes = await bus._redis.lrange(bus._keys.room(room_id, "logsz"), 0, -1)
        assert [int(s.split(b":")[1]) for s in sizes] == blobs


async def test_catchup_needs_the_seat_and_a_valid_payload(server: RunningServer) -> None:
    owner = await server.client()
    created = await owner.call("room.create", {"listed": True, "topic": "pages"})
    room_id = created["room"]["room_id"]
    alice = await TestMember.join(server, room_id)
    for i in range(3):
        assert (await alice.send(f"m{i}"))["ok"]
    last = await server.node.bus.last_seq(room_id)
    stranger = await server.client()
    refused = await stranger.call("room.catchup", {"room_id": room_id, "after_seq": 0})
    assert refused["error"]["code"] == "not_in_room"
    for bad in (
        {"room_id": room_id},
        {"room_id": room_id, "after_seq": -1},
        {"room_id": room_id, "after_seq": "1"},
        {"room_id": "not an id", "after_seq": 0},
        {"room_id": room_id, "after_seq": 0, "extra": True},
    ):
        ack = await alice.client.call("room.catchup", bad)
        assert ack["error"]["code"] == "bad_request", (bad, ack)
    assert await server.node.bus.last_seq(room_id) == last
    page = await alice.client.call("room.catchup", {"room_id": room_id, "after_seq": last - 3})
    assert page["ok"] and not page["gap"] and not page["more"]
    assert [e["seq"] for e in page["events"]] == [last - 2, last - 1, last]
    assert {e["event"] for e in page["events"]} == {"msg"}
    assert (await alice.client.call("room.catchup", {"room_id": room_id, "after_seq": last}))[
        "events"
    ] == []
    ahead = await alice.client.call("room.catchup", {"room_id": room_id, "after_seq": last + 5})
    assert ahead["ok"] and ahead["gap"] and ahead["events"] == [] and not ahead["more"]


async def test_pages_of_200_pass_the_default_control_bucket(make_server: Any) -> None:
    """With default page and rate settings, 800 missed events come in a few pages in a row."""
    server = await make_server(**FAST)
    owner = await server.client()
    created = await owner.call("room.create", {"listed": True, "topic": "pages"})
    room_id = created["room"]["room_id"]
    alice = await TestMember.join(server, room_id)
    start = await server.node.bus.last_seq(room_id)
    for i in range(800):
        assert (await alice.send(f"m{i}"))["ok"]
    seqs: list[int] = []
    after, more, pages = start, True, 0
    while more:
        page = await alice.client.call("room.catchup", {"room_id": room_id, "after_seq": after})
        assert page["ok"], page
        assert len(page["events"]) <= 200
        seqs += [e["seq"] for e in page["events"]]
        after, more, pages = seqs[-1], page["more"], pages + 1
    assert seqs == list(range(start + 1, start + 801)) and pages == 4


async def drained(room: Any) -> list[RoomEvent]:
    await asyncio.sleep(0.2)
    out: list[RoomEvent] = []
    while not room._queue.empty():
        out.append(room._queue.get_nowait())
    return out
