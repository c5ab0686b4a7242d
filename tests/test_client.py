"""The asyncio client against a real node: real Socket.IO connections, real E2EE, no mocks."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import pytest

from chatserver import e2ee
from chatserver.client import (
    ChatError,
    DecryptFailed,
    KeyRejected,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    Message,
    Reconnected,
    Room,
    RoomEnded,
    RoomEvent,
    Typing,
    _Closed,
)
from chatserver.e2ee.skd import seal_skd
from chatserver.links import LinkError, parse_link, private_link
from chatserver.ports import BusUnavailable
from chatserver.protocol import CloseCode
from tests.conftest import RunningServer
from tests.members import TestMember

E = TypeVar("E")
FAST = {"msg_rate_per_s": 1000.0, "msg_burst": 1000}


async def next_event(room: Room, kind: type[E], timeout: float = 5.0) -> E:
    """The next event of `kind` (others are skipped)."""
    async with asyncio.timeout(timeout):
        async for ev in room.events():
            if isinstance(ev, kind):
                return ev
    raise AssertionError(f"the stream ended before a {kind.__name__}")


async def texts(
    room: Room,
    n: int,
    *,
    own: bool = False,
    timeout: float = 10.0,
    others: list[RoomEvent] | None = None,
) -> list[Message]:
    """The next `n` messages (by others unless `own`); other events go to `others`."""
    got: list[Message] = []
    async with asyncio.timeout(timeout):
        async for ev in room.events():
            if not isinstance(ev, Message):
                if others is not None:
                    others.append(ev)
                continue
            if ev.own and not own:
                continue
            got.append(ev)
            if len(got) == n:
                return got
    raise AssertionError(f"the stream ended after {len(got)} of {n} messages")


def queued(room: Room) -> list[RoomEvent]:
    """Every event already queued (no waiting)."""
    out: list[RoomEvent] = []
    while not room._queue.empty():
        ev = room._queue.get_nowait()
        if not isinstance(ev, _Closed):
            out.append(ev)
    return out


def seat_sid(server: RunningServer, room: Room) -> str:
    seat = server.node.registry.seat(room.room_id, room.member_id)
    assert seat is not None and seat.sid
    return seat.sid


async def kill_transport(server: RunningServer, room: Room) -> None:
    """Close the member's websocket from the server side, as a slow-consumer cut would."""
    sid = seat_sid(server, room)
    eio_sid = server.node.sio.manager.eio_sid_from_sid(sid, "/")
    await server.node.sio.eio.close_socket(eio_sid, CloseCode.SLOW_CONSUMER)


async def test_listed_room_both_ways(server: RunningServer, clients: Any) -> None:
    alice_c, bob_c = await clients(server.url), await clients(server.url)
    created = await alice_c.create_room(listed=True, topic="sleep")
    assert created.host_link is not None and str(created.host_link).startswith(str(created.link))
    assert str(created.link) == f"{server.url}/r/{created.room_id}"
    assert created.room_id not in [r["room_id"] for r in await bob_c.list_rooms()]  # empty
    alice = await alice_c.join(str(created.link), nickname="Alder")
    listing = await bob_c.list_rooms(topic="sle")
    assert created.room_id in [r["room_id"] for r in listing]
    bob = await bob_c.join(created.link)
    joined = await next_event(alice, MemberJoined)
    assert joined.member_id == bob.member_id and joined.pseudonym == bob.pseudonym
    assert alice.safety_code() == bob.safety_code()
    assert set(alice.members) == set(bob.members) == {alice.member_id, bob.member_id}
    assert alice.members[alice.member_id].pseudonym == "Alder"

    sent = await alice.send("hello bob", cw="sleep")
    [got] = await texts(bob, 1)
    assert (got.text, got.sender_id, got.pseudonym, got.seq) == (
        "hello bob",
        alice.member_id,
        "Alder",
        sent.seq,
    )
    assert got.body == {"text": "hello bob", "cw": "sleep"} and not got.own
    await bob.send("hi alice")
    [own, reply] = await texts(alice, 2, own=True)
    assert own.own and own.text == "hello bob" and own.seq == sent.seq
    assert reply.text == "hi alice" and reply.sender_id == bob.member_id


async def test_private_room_by_link_and_title(server: RunningServer, clients: Any) -> None:
    alice_c, bob_c = await clients(server.url), await clients(server.url)
    created = await alice_c.create_room(title="Tuesday circle")
    link = str(created.link)
    assert link.startswith(f"{server.url}/r#") and created.room_id not in link
    assert parse_link(link).room_id == created.room_id
    alice = await alice_c.join(link)
    bob = await bob_c.join(link, nickname="Birch")
    assert alice.title == bob.title == "Tuesday circle"
    await next_event(alice, MemberJoined)
    await alice.send("private hello")
    assert [m.text for m in await texts(bob, 1)] == ["private hello"]
    await bob.send("private reply")
    assert [m.text for m in await texts(alice, 1)] == ["private reply"]
    # Without the secret, the room id alone does not get anyone in.
    stranger = await clients(server.url)
    with pytest.raises(ChatError) as refused:
        await stranger.join(f"{server.url}/r/{created.room_id}")
    assert refused.value.code == "join_proof_required"


async def test_peer_room_creator_takes_the_host_seat(server: RunningServer, clients: Any) -> None:
    host_c, guest_c = await clients(server.url), await clients(server.url)
    created = await host_c.create_room()
    assert created.host_link is not None and str(created.host_link).startswith(
        str(created.link) + "."
    )
    guest = await guest_c.join(created.link)  # a peer room does not wait for its host
    assert guest.role == "member"
    host = await host_c.join(created.host_link)
    assert host.role == "host"
    await next_event(guest, MemberJoined)
    await host.send("welcome")
    assert [m.text for m in await texts(guest, 1)] == ["welcome"]
    without = await host_c.create_room(host_seat=False)
    assert without.host_link is None


async def test_sessions_need_a_signed_in_therapist(server: RunningServer, clients: Any) -> None:
    c = await clients(server.url)
    ack = await c.call("room.create", {"listed": True, "topic": "grief", "kind": "session"})
    assert ack["ok"] is False and ack["error"]["code"] == "not_signed_in"


async def test_late_joiner_reads_only_what_follows(server: RunningServer, clients: Any) -> None:
    a_c, b_c, c_c = [await clients(server.url) for _ in range(3)]
    link = (await a_c.create_room()).link
    alice, bob = await a_c.join(link), await b_c.join(link)
    await next_event(alice, MemberJoined)
    for i in range(3):
        await alice.send(f"before {i}")
    await texts(bob, 3)
    carol = await c_c.join(link)
    await next_event(alice, MemberJoined)
    await alice.send("after")
    await bob.send("bob after")
    got = await texts(carol, 2)
    assert [m.text for m in got] == ["after", "bob after"]
    assert got[0].seq > carol.seq - 10  # nothing older was delivered
    await asyncio.sleep(0.1)
    leftovers = queued(carol)
    assert not [e for e in leftovers if isinstance(e, Message)], leftovers


async def test_leave_rekeys_and_the_rest_go_on(server: RunningServer, clients: Any) -> None:
    a_c, b_c, c_c = [await clients(server.url) for _ in range(3)]
    link = (await a_c.create_room()).link
    alice, bob, carol = await a_c.join(link), await b_c.join(link), await c_c.join(link)
    # A sender shares its chain with the members it knows: wait until alice knows carol, or
    # carol (who joined last) cannot read what alice seals before that.
    async with asyncio.timeout(5):
        while len(alice.members) < 3:  # noqa: ASYNC110 - polling a client's view
            await asyncio.sleep(0.02)
    await alice.send("all three")
    await texts(bob, 1)
    await texts(carol, 1)
    epoch = alice.epoch
    carol_id = carol.member_id
    await carol.leave()
    assert carol.closed
    left = await next_event(bob, MemberLeft)
    assert left.member_id == carol_id and left.reason == "left" and left.epoch == epoch + 1
    await alice.send("just us")
    [got] = await texts(bob, 1)
    assert got.text == "just us"
    assert alice.epoch == bob.epoch == epoch + 1
    assert set(alice.members) == {alice.member_id, bob.member_id}
    await bob.send("indeed")
    assert [m.text for m in await texts(alice, 1)] == ["indeed"]
    with pytest.raises(ChatError):
        await carol.send("I am gone")


async def test_fifty_messages_in_order_without_duplicates(make_server: Any, clients: Any) -> None:
    server = await make_server(**FAST)
    a_c, b_c = await clients(server.url), await clients(server.url)
    link = (await a_c.create_room()).link
    alice, bob = await a_c.join(link), await b_c.join(link)
    await next_event(alice, MemberJoined)

    async def chat(room: Room, who: str) -> list[int]:
        return [(await room.send(f"{who} {i}")).seq for i in range(25)]

    a_seqs, b_seqs = await asyncio.gather(chat(alice, "a"), chat(bob, "b"))
    for room in (alice, bob):
        got = await texts(room, 50, own=True)
        seqs = [m.seq for m in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == 50
        assert sorted(seqs) == sorted(a_seqs + b_seqs)
        assert [m.text for m in got if m.text.startswith("a ")] == [f"a {i}" for i in range(25)]
        assert [m.text for m in got if m.text.startswith("b ")] == [f"b {i}" for i in range(25)]
        await asyncio.sleep(0.05)
        assert not [e for e in queued(room) if isinstance(e, Message)]


async def test_rate_limited_sends_are_retried(make_server: Any, clients: Any) -> None:
    server = await make_server(msg_rate_per_s=20.0, msg_burst=2)
    a_c, b_c = await clients(server.url), await clients(server.url)
    link = (await a_c.create_room()).link
    alice, bob = await a_c.join(link), await b_c.join(link)
    await next_event(alice, MemberJoined)
    for i in range(6):
        await alice.send(f"m{i}")
    assert [m.text for m in await texts(bob, 6)] == [f"m{i}" for i in range(6)]


async def test_rename_typing_and_refusals(server: RunningServer, clients: Any) -> None:
    a_c, b_c = await clients(server.url), await clients(server.url)
    link = (await a_c.create_room(listed=True, topic="grief")).link
    alice, bob = await a_c.join(link), await b_c.join(link, nickname="River")
    await next_event(alice, MemberJoined)
    with pytest.raises(ChatError) as taken:
        await alice.rename("river")
    assert taken.value.code == "nickname_taken" and taken.value.message
    await alice.rename("Willow")
    assert alice.pseudonym == "Willow"
    updated = await next_event(bob, MemberUpdated)
    assert (updated.member_id, updated.pseudonym) == (alice.member_id, "Willow")
    assert updated.old_pseudonym != "Willow"
    await alice.typing(True)
    typing = await next_event(bob, Typing)
    assert typing == Typing(alice.member_id, "Willow", True)
    await alice.send("renamed")
    [got] = await texts(bob, 1)
    assert got.pseudonym == "Willow"


async def test_room_ended_ends_the_stream(make_server: Any, clients: Any) -> None:
    server = await make_server(max_lifetime_s=3600)
    a_c = await clients(server.url)
    alice = await a_c.join((await a_c.create_room()).link)
    server.clock.advance(3601)
    ended = await next_event(alice, RoomEnded)
    assert ended.reason == "lifetime"
    assert [e async for e in alice.events()] == []
    with pytest.raises(ChatError):
        await alice.send("too late")


async def test_survives_a_forced_disconnect(make_server: Any, clients: Any) -> None:
    """The server cuts Alice's websocket while Bob is sending and Alice has a send in flight:
    after the resume she has every message exactly once, in order, and hers exactly once."""
    server = await make_server(**FAST)
    a_c = await clients(server.url, reconnect_delay=0.05)
    b_c = await clients(server.url)
    link = (await a_c.create_room()).link
    alice, bob = await a_c.join(link), await b_c.join(link)
    await next_event(alice, MemberJoined)
    member_id, epoch = alice.member_id, alice.epoch

    async def bob_talks() -> None:
        for i in range(40):
            await bob.send(f"bob {i}")
            await asyncio.sleep(0.005)

    talking = asyncio.create_task(bob_talks())
    await asyncio.sleep(0.05)
    mine = asyncio.create_task(alice.send("alice in flight"))
    await kill_transport(server, alice)
    await talking
    sent = await asyncio.wait_for(mine, 10)
    others: list[RoomEvent] = []
    got = await texts(alice, 41, own=True, others=others)
    assert [e for e in others if isinstance(e, Reconnected)] == [
        Reconnected(resumed=True, gap=False, member_id=member_id)
    ]
    assert [m.text for m in got if not m.own] == [f"bob {i}" for i in range(40)]
    assert [m.text for m in got if m.own] == ["alice in flight"]
    seqs = [m.seq for m in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert next(m for m in got if m.own).seq == sent.seq
    # The same seat: no new identity, no epoch bump.
    assert (alice.member_id, alice.epoch) == (member_id, epoch)
    [bob_view] = [m for m in await texts(bob, 1)]
    assert bob_view.text == "alice in flight" and bob_view.seq == sent.seq
    await asyncio.sleep(0.1)
    assert not [e for e in queued(bob) if isinstance(e, Message) and not e.own]
    await alice.send("back")
    assert [m.text for m in await texts(bob, 1)] == ["back"]


async def test_lost_ack_is_retried_with_the_same_envelope(make_server: Any, clients: Any) -> None:
    """The server sequences Alice's message but her connection dies before the ack: the
    retry after resume is answered as a duplicate, with the original seq."""
    server = await make_server(**FAST)
    a_c = await clients(server.url, reconnect_delay=0.05)
    b_c = await clients(server.url)
    link = (await a_c.create_room()).link
    alice, bob = await a_c.join(link), await b_c.join(link)
    await next_event(alice, MemberJoined)
    handlers = server.node.sio.handlers["/"]
    original = handlers["msg.send"]
    cut = asyncio.Event()

    async def sequence_then_cut(sid: str, *args: Any) -> Any:
        ack = await original(sid, *args)
        if not cut.is_set():
            cut.set()
            await server.node.sio.disconnect(sid)  # the ack never reaches the client
        return ack

    handlers["msg.send"] = sequence_then_cut
    try:
        sent = await asyncio.wait_for(alice.send("exactly once"), 10)
    finally:
        handlers["msg.send"] = original
    assert cut.is_set() and sent.duplicate
    [got] = await texts(bob, 1)
    assert (got.text, got.seq) == ("exactly once", sent.seq)
    others: list[RoomEvent] = []
    own = await texts(alice, 1, own=True, others=others)
    assert [(m.text, m.seq) for m in own] == [("exactly once", sent.seq)]
    await asyncio.sleep(0.05)
    others += queued(alice)
    assert [e for e in others if isinstance(e, Reconnected)] == [
        Reconnected(resumed=True, gap=False, member_id=alice.member_id)
    ]
    await alice.send("and then")
    assert [m.text for m in await texts(bob, 1)] == ["and then"]
    await asyncio.sleep(0.1)
    assert not [e for e in queued(bob) if isinstance(e, Message) and not e.own]


async def test_resume_after_the_grace_rejoins(make_server: Any, clients: Any) -> None:
    server = await make_server(resume_grace_s=5.0)
    a_c = await clients(server.url, reconnect_delay=0.6)
    b_c = await clients(server.url)
    link = (await a_c.create_room()).link
    alice, bob = await a_c.join(link), await b_c.join(link)
    await next_event(alice, MemberJoined)
    old_id, epoch = alice.member_id, alice.epoch
    sid = seat_sid(server, alice)
    await server.node.sio.disconnect(sid)
    # The server must have held the seat (its deadline written) before time jumps: under load a
    # fixed pause was not always enough.
    async with asyncio.timeout(5):
        while sid in server.node.registry.connections:  # noqa: ASYNC110 (the server has no event for it)
            await asyncio.sleep(0.01)
    server.clock.advance(6)
    left = await next_event(bob, MemberLeft)
    assert left.member_id == old_id and left.reason == "disconnected"
    back = await next_event(alice, Reconnected, timeout=10)
    assert not back.resumed and back.member_id != old_id == left.member_id
    rejoined = await next_event(bob, MemberJoined)
    assert rejoined.member_id == alice.member_id
    assert alice.epoch == bob.epoch == epoch + 1
    await alice.send("new seat")
    assert [m.text for m in await texts(bob, 1)] == ["new seat"]
    await bob.send("welcome back")
    assert [m.text for m in await texts(alice, 1)] == ["welcome back"]


async def test_undecryptable_envelope_is_surfaced_and_the_stream_goes_on(
    server: RunningServer, clients: Any
) -> None:
    """A (buggy or hostile) member sends an envelope without its key: the reader waits a little,
    reports a DecryptFailed and carries on with the next message."""
    a_c = await clients(server.url, key_wait=0.3)
    created = await a_c.create_room(listed=True, topic="peer")
    alice = await a_c.join(created.link)
    mallory = await TestMember.join(server, created.room_id)
    mallory.crypto.add_member(alice.members[alice.member_id].card)
    await next_event(alice, MemberJoined)
    # A second chain of the same identity whose key is never shared.
    other = e2ee.RoomCrypto(mallory.identity, mallory.crypto.room_id, epoch=alice.epoch)
    keyless = await mallory.client.call(
        "msg.send", {"room_id": created.room_id, "env": other.encrypt("no key for this")}
    )
    assert keyless["ok"], keyless
    assert (await mallory.send("this one has its key"))["ok"]
    failed = await next_event(alice, DecryptFailed)
    assert (failed.seq, failed.sender_id, failed.code) == (
        keyless["seq"],
        mallory.member_id,
        "unknown_chain",
    )
    assert [m.text for m in await texts(alice, 1)] == ["this one has its key"]


async def test_equivocating_sender_key_is_flagged(server: RunningServer, clients: Any) -> None:
    a_c = await clients(server.url)
    created = await a_c.create_room(listed=True, topic="peer")
    alice = await a_c.join(created.link)
    mallory = await TestMember.join(server, created.room_id)
    await next_event(alice, MemberJoined)
    card = e2ee.parse_card(alice.members[alice.member_id].card)
    for chain_key in (b"\x01" * 32, b"\x02" * 32):
        skd = seal_skd(
            mallory.identity,
            card,
            room_id=card.room_id,
            epoch=alice.epoch,
            key_id=7,
            start_index=0,
            chain_key=chain_key,
        )
        ack = await mallory.client.call(
            "key.send",
            {"room_id": created.room_id, "shares": [{"to": alice.member_id, "skd": skd}]},
        )
        assert ack["ok"] and ack["delivered"] == 1, ack
    rejected = await next_event(alice, KeyRejected)
    assert (rejected.sender_id, rejected.code) == (mallory.member_id, "equivocation")
    assert alice.flagged == {mallory.member_id}


async def test_resume_with_a_gap_resets_membership(make_server: Any, clients: Any) -> None:
    """Too much happened while Alice was away for the recovery buffer: she resumes her seat,
    is told about the gap, and the room goes on with the membership of the snapshot."""
    server = await make_server(buffer_max_events=3, **FAST)
    a_c = await clients(server.url, reconnect_delay=0.5)
    b_c, c_c = await clients(server.url), await clients(server.url)
    link = (await a_c.create_room()).link
    alice, bob, carol = await a_c.join(link), await b_c.join(link), await c_c.join(link)
    await next_event(alice, MemberJoined)
    await next_event(alice, MemberJoined)
    await kill_transport(server, alice)
    await carol.leave()
    for i in range(6):
        await bob.send(f"missed {i}")
    back = await next_event(alice, Reconnected, timeout=10)
    assert back.resumed and back.gap
    assert set(alice.members) == {alice.member_id, bob.member_id}
    assert alice.epoch == bob.epoch
    await bob.send("after the gap")
    assert [m.text for m in await texts(alice, 1)] == ["after the gap"]
    await alice.send("I am back")
    assert [m.text for m in await texts(bob, 1)] == ["I am back"]


def test_links_round_trip_and_refuse_bad_input() -> None:
    secret = e2ee.new_room_secret()
    seed = bytes(range(64))
    private = private_link("https://chat.example/peer/", secret, seed)
    text = str(private)
    assert text.startswith("https://chat.example/peer/r#") and "." in text
    back = parse_link(text)
    assert back.server_url == "https://chat.example/peer" and back.secret is not None
    assert back.secret.secret == secret.secret and back.room_id == private.room_id
    assert back.host_identity is not None
    assert back.host_identity.member_id == e2ee.Identity.from_seeds(seed[:32], seed[32:]).member_id
    assert str(back.without_host()) == text.rsplit(".", 1)[0]
    assert secret.secret.hex() not in repr(back) and "secret" not in repr(back).lower()
    listed = parse_link("http://127.0.0.1:8080/r/AAAAAAAAAAAAAAAAAAAAAA")
    assert (listed.secret, listed.host_identity) == (None, None)
    assert str(listed) == "http://127.0.0.1:8080/r/AAAAAAAAAAAAAAAAAAAAAA"
    for bad, why in [
        ("", "empty"),
        ("chat.example/r#x", "http"),
        ("https://chat.example/room/AAAAAAAAAAAAAAAAAAAAAA", "looks like"),
        ("https://chat.example/r", "secret"),
        ("https://chat.example/r#" + "A" * 42, "32 bytes"),
        ("https://chat.example/r#" + "A" * 43 + ".", "empty"),
        ("https://chat.example/r/AAAA", "22"),
        ("https://chat.example/r/AAAAAAAAAAAAAAAAAAAAAA#abc", "64 bytes"),
        ("https://chat.example/r#!!", "base64url"),
    ]:
        with pytest.raises(LinkError, match=why):
            parse_link(bad)


async def test_a_resume_answered_unavailable_is_asked_again_and_keeps_the_seat(
    server: RunningServer, clients: Any
) -> None:
    """The backend fails once in the middle of a resume (after the seat was re-attached): the
    answer is `unavailable`, the client asks again on the same connection, and the server takes
    the second resume (not `already_member`); same seat, nothing missed, no rejoin."""
    a_c = await clients(server.url, reconnect_delay=0.05)
    b_c = await clients(server.url)
    link = (await a_c.create_room()).link
    alice, bob = await a_c.join(link), await b_c.join(link)
    await next_event(alice, MemberJoined)
    member_id = alice.member_id
    bus = server.node.bus
    mailbox = bus.mailbox
    failures = 0

    async def flaky(room_id: str, member: str) -> Any:
        nonlocal failures
        if failures == 0:
            failures += 1
            await bob.send("while alice resumes")
            raise BusUnavailable("blip")
        return await mailbox(room_id, member)

    bus.mailbox = flaky  # type: ignore[method-assign]
    try:
        await kill_transport(server, alice)
        # The message sent meanwhile comes with the resume, before Reconnected.
        caught_up = await texts(alice, 1)
        back = await next_event(alice, Reconnected, timeout=10)
    finally:
        bus.mailbox = mailbox  # type: ignore[method-assign]
    assert failures == 1
    assert back == Reconnected(resumed=True, gap=False, member_id=member_id)
    assert alice.member_id == member_id
    await bob.send("after")
    got = [*caught_up, *await texts(alice, 1)]
    assert [m.text for m in got] == ["while alice resumes", "after"]
    assert [m.seq for m in got] == [3, 4]
