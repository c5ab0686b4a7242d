"""The Python client against a lying server: each attack of the trust layer, refused by the client.

The node is real and so are the clients' websockets; `tests.malicious.Tamper` rewrites, replays
or injects what the bus hands the gateway, exactly what a compromised server or a Redis writer
can do. A client believes only what a key it trusts signed: each test shows what the person would
have seen before (the attack working) cannot happen, and that the client counted the refusal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from chatserver import e2ee
from chatserver.client import (
    ChatClient,
    ChatError,
    DecryptFailed,
    Message,
    Question,
    Reconnected,
    Room,
    authority,
    question_info,
)
from chatserver.e2ee.charter import make_charter
from chatserver.e2ee.primitives import hpke_seal
from chatserver.e2ee.roles import sign_role
from chatserver.links import RoomLink
from chatserver.protocol.ids import b64id, unb64id
from tests.cluster.scaleout_helpers import wait_until
from tests.conftest import RunningServer, ServerFactory
from tests.malicious import Tamper
from tests.members import TestMember
from tests.test_moderation import FAST, admitted_member, next_event, session, text_of


@pytest.fixture
async def srv(make_server: ServerFactory, tmp_path: Path) -> RunningServer:
    """A node that can sign therapist credentials (sessions, Q&A)."""
    return await make_server(key_file=str(tmp_path / "server.key"), **FAST)


async def three_in_a_room(
    server: RunningServer, clients: Any
) -> tuple[Room, Room, Room, list[ChatClient]]:
    cs = [await clients(server.url) for _ in range(3)]
    created = await cs[0].create_room(listed=True, topic="sleep")
    assert created.host_link is not None
    host = await cs[0].join(created.host_link, "Alice")
    bob = await cs[1].join(created.link, "Bobby")
    carol = await cs[2].join(created.link, "Carol")
    for room in (host, bob, carol):
        await wait_until(lambda r=room: len(r.members) == 3, "everyone knows everyone", 5)
    return host, bob, carol, cs


async def messages_until(room: Room, last_text: str, timeout: float = 5.0) -> list[Any]:
    """Every event up to and including the message whose text is `last_text`."""
    seen: list[Any] = []
    async with asyncio.timeout(timeout):
        async for ev in room.events():
            seen.append(ev)
            if isinstance(ev, Message) and ev.text == last_text:
                return seen
    raise AssertionError("stream ended")


async def test_a_relabelled_sender_is_dropped_not_shown_as_someone_else(
    server: RunningServer, clients: Any
) -> None:
    tamper = Tamper(server.node)
    alice, bob, carol, _ = await three_in_a_room(server, clients)

    def as_bob(room_id: str, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("t") == "msg" and event.get("from") == alice.member_id:
            event["from"] = bob.member_id  # Alice's signed envelope, labelled as Bob's
        return event

    tamper.rewrite = as_bob
    await alice.send("I think you should all give up")
    await bob.send("bob is here")
    seen = await messages_until(carol, "bob is here")
    shown = [(m.sender_id, m.text) for m in seen if isinstance(m, Message)]
    assert shown == [(bob.member_id, "bob is here")]
    assert carol.refused["relabelled"] == 1


async def test_a_departure_at_the_same_epoch_cannot_replay_an_old_message(
    server: RunningServer, clients: Any
) -> None:
    tamper = Tamper(server.node)
    alice, bob, carol, _ = await three_in_a_room(server, clients)
    await alice.send("my address is 12 Elm Street")
    assert (await text_of(carol)).text == "my address is 12 Elm Street"
    old_msg = tamper.recorded("msg")[-1]
    alice_joined = next(
        e for e in tamper.recorded("member.joined") if e["member"]["member_id"] == alice.member_id
    )
    alice_key = next(
        e
        for _, to, e in tamper.direct_events
        if e.get("t") == "key" and e.get("from") == alice.member_id and to == carol.member_id
    )
    epoch = carol.epoch
    room_id = carol.room_id
    # Alice "leaves" without an epoch bump, "rejoins" with her old card, her old key share is
    # re-delivered, then her old envelope: before, Carol saw the old message a second time.
    await tamper.inject(
        room_id,
        {
            "t": "member.left",
            "room_id": room_id,
            "member_id": alice.member_id,
            "reason": "left",
            "epoch": epoch,
            "ts": 0,
        },
    )
    await tamper.inject(room_id, {**alice_joined, "t": "member.joined"})
    await tamper.inject_direct(room_id, carol.member_id, alice_key)
    await tamper.inject(room_id, {**old_msg, "t": "msg"})
    await asyncio.sleep(0.3)
    await bob.send("after the replay")
    seen = await messages_until(carol, "after the replay")
    assert [m.text for m in seen if isinstance(m, Message)] == ["after the replay"]
    assert carol.refused["stale_leave"] == 1
    assert alice.member_id in carol.members and carol.epoch == epoch


async def test_a_forged_or_unsigned_question_is_dropped(srv: RunningServer, clients: Any) -> None:
    tamper = Tamper(srv.node)
    _, host, created = await session(srv, clients, qa=True)
    asker = await admitted_member(srv, clients, host, created.link, "Ash")
    # What anyone can make: a question sealed to the host's public X25519 key, unsigned, and
    # labelled as Ash's by the server.
    host_x = e2ee.parse_card(host.members[host.member_id].card).x_public
    sealed = hpke_seal(
        host_x,
        question_info(host.room_id, asker.member_id, host.member_id),
        json.dumps({"text": "Ash asks: should I stop my medication?", "consent": True}).encode(),
    )
    await tamper.inject_direct(
        host.room_id,
        host.member_id,
        {"t": "qa.question", "room_id": host.room_id, "from": asker.member_id, "sealed": sealed},
    )
    # And a real question, signed by Ash: the only one the host sees.
    assert await asker.ask("Is it normal to feel numb?") == 1
    question = await next_event(host, Question)
    assert question.text == "Is it normal to feel numb?"
    assert question.sender_id == asker.member_id
    assert host.refused["unsigned_question"] == 1


async def test_only_a_hosts_message_carries_a_quote(srv: RunningServer, clients: Any) -> None:
    _, host, created = await session(srv, clients, qa=True)
    ash = await admitted_member(srv, clients, host, created.link, "Ash")
    birch = await admitted_member(srv, clients, host, created.link, "Birch")
    await host.settings(qa=False)  # members may post again
    await asyncio.sleep(0.2)
    await ash.send("totally normal", quote={"asker": "Birch", "text": "I want to hurt someone"})
    got = await text_of(birch)
    assert got.text == "totally normal" and "quote" not in got.body
    assert birch.refused["quote_from_non_host"] == 1
    await host.send("Here is an answer", quote={"text": "How do I sleep?"})
    answer = await text_of(birch)
    assert answer.body["quote"] == {"text": "How do I sleep?"}


async def test_a_malformed_push_never_wedges_the_stream(
    server: RunningServer, clients: Any
) -> None:
    tamper = Tamper(server.node)
    alice, bob, carol, _ = await three_in_a_room(server, clients)
    room_id = carol.room_id
    for bad in (
        {"t": "member.joined", "room_id": room_id},  # no member
        {"t": "member.updated", "room_id": room_id, "member": 5},
        {"t": "member.left", "room_id": room_id, "member_id": None, "epoch": "x"},
        {"t": "msg", "room_id": room_id, "from": alice.member_id, "env": b"\x01" * 500},
    ):
        await tamper.inject(room_id, bad)
    await asyncio.sleep(0.2)
    await bob.send("still talking")
    seen = await messages_until(carol, "still talking")
    # What is not an envelope at all shows as unreadable (both clients: tests/vectors/replica.json).
    assert [e.code for e in seen if isinstance(e, DecryptFailed)] == ["malformed"]
    assert carol.refused["malformed"] == 2  # the member views
    assert carol.refused["stale_leave"] == 1  # an epoch that is no u32 moves nothing


async def test_a_burst_of_bogus_envelopes_does_not_stall_the_room(
    make_server: ServerFactory, clients: Any
) -> None:
    server = await make_server(msg_rate_per_s=1000.0, msg_burst=1000)
    alice, bob, carol, _ = await three_in_a_room(server, clients)
    mallory = await TestMember.join(server, alice.room_id)
    await wait_until(lambda: mallory.member_id in carol.members, "Mallory joined", 5)
    # Twenty envelopes on a chain whose key Mallory never shares with anyone.
    for i in range(20):
        ack = await mallory.client.call(
            "msg.send", {"room_id": alice.room_id, "env": mallory.envelope(f"bogus {i}")}
        )
        assert ack["ok"], ack
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bob.send("honest words")
    others: list[Any] = []
    seen = await messages_until(carol, "honest words", timeout=10)
    assert loop.time() - started < 1.0
    others += seen
    # Mallory's envelopes are shown as undecryptable once her key is overdue, all at once.
    async with asyncio.timeout(carol.client.key_wait + 3):
        async for ev in carol.events():
            others.append(ev)
            if sum(isinstance(e, DecryptFailed) for e in others) == 20:
                break
    failed = [e for e in others if isinstance(e, DecryptFailed)]
    assert {e.sender_id for e in failed} == {mallory.member_id}
    assert {e.code for e in failed} == {"unknown_chain"}


async def private_room(server: RunningServer, clients: Any) -> tuple[Room, Room, Any]:
    a_c, b_c = await clients(server.url), await clients(server.url)
    created = await a_c.create_room()  # private: the link's fragment holds the secret
    alice = await a_c.join(created.link, "Alice")
    bob = await b_c.join(created.link, "Bobby")
    await wait_until(lambda: bob.member_id in alice.members, "alice knows bob", 5)
    return alice, bob, created.link


async def test_a_ghost_card_in_a_private_room_gets_no_keys(
    server: RunningServer, clients: Any
) -> None:
    tamper = Tamper(server.node)
    alice, bob, link = await private_room(server, clients)
    room_key = unb64id(alice.room_id)
    ghost = e2ee.Identity.generate()
    ghost_id = b64id(ghost.member_id)
    view = {
        "member_id": ghost_id,
        "pseudonym": "Quiet Heron",
        "role": "member",
        "card": ghost.card(room_key, 1),
        "joined_at": 0.0,
        "muted_until": None,
        "admission": None,
    }
    # No proof; a proof made for someone else; a real member's id and proof with a ghost's card.
    bob_view = next(
        e["member"]
        for e in tamper.recorded("member.joined")
        if e["member"]["member_id"] == bob.member_id
    )
    for forged in (
        {**view, "member_proof": None},
        {**view, "member_proof": bob_view["member_proof"]},
        {**bob_view, "card": ghost.card(room_key, 1)},
    ):
        await tamper.inject(
            alice.room_id, {"t": "member.joined", "room_id": alice.room_id, "member": forged}
        )
    await alice.send("only for bob")
    got = await text_of(bob)
    assert got.text == "only for bob"
    assert ghost_id not in alice.members
    assert alice.refused["unproven_member"] == 2 and alice.refused["card_mismatch"] == 1
    sealed_to = {to for _, to, e in tamper.direct_events if e.get("t") == "key"}
    assert ghost_id not in sealed_to
    # A real link holder is admitted as ever.
    carol = await (await clients(server.url)).join(link, "Carol")
    await wait_until(lambda: carol.member_id in alice.members, "alice admits carol", 5)


async def test_a_private_join_without_a_member_proof_is_refused(server: RunningServer) -> None:
    secret = e2ee.new_room_secret()
    owner = await server.client()
    room_id = b64id(secret.room_id)
    created = await owner.call(
        "room.create",
        {
            "room_id": room_id,
            "join_key": secret.join_public,
            "charter": make_charter(secret, None, lobby=False),
        },
    )
    assert created["ok"], created
    joiner = TestMember(await server.client(), room_id)
    missing = await joiner.join_ack(secret, member_proof=None)
    assert missing["error"]["code"] in ("bad_request", "bad_member_proof")
    wrong = await joiner.join_ack(secret, member_proof=secret.sign_member(b"\x00" * 16))
    assert wrong["error"]["code"] == "bad_member_proof"
    assert (await joiner.join_ack(secret))["ok"]


async def rewrite_room(server: RunningServer, room_id: str, **changes: Any) -> None:
    """What a Redis writer (or the server) can do to a room's stored state."""
    current = await server.node.store.load(room_id)
    assert current is not None
    room = dataclasses.replace(current.room, **changes)
    policy = server.node.service.policy
    due_at = room.next_expiry(policy)
    assert await server.node.store.commit(room_id, room, current.version, due_at) is not None


async def test_a_private_sessions_host_and_lobby_come_from_its_charter(
    srv: RunningServer, clients: Any
) -> None:
    _, host, created = await session(srv, clients)
    ghost = b64id(b"g" * 16)
    # The stored room now says: no lobby, and a ghost holds the host seat.
    await rewrite_room(srv, host.room_id, lobby=False, host_id=ghost)
    walker = await (await clients(srv.url)).join(created.link, "Walk In")
    assert walker.lobby is True and walker.host_id == host.member_id
    # The host's client still wants an admission: the walk-in gets no keys from it.
    await asyncio.sleep(0.3)
    assert walker.member_id not in host.members
    # Without its charter the room is refused outright.
    await rewrite_room(srv, host.room_id, charter=None)
    with pytest.raises(ChatError) as refused:
        await (await clients(srv.url)).join(created.link, "Another")
    assert refused.value.code == "bad_charter"


def test_authority_in_a_listed_room_is_the_servers_word_and_in_a_private_one_the_links() -> None:
    secret = e2ee.new_room_secret()
    link = RoomLink("https://chat.example", b64id(secret.room_id), secret)
    host = b"h" * 16
    view = {"host_id": b64id(b"x" * 16), "lobby": False}
    charter = make_charter(secret, host, lobby=True)
    assert authority(link, {**view, "charter": charter}) == (b64id(host), True)
    for forged in (None, charter[:-1], make_charter(e2ee.new_room_secret(), host, lobby=False)):
        with pytest.raises(ChatError):
            authority(link, {**view, "charter": forged})
    listed = RoomLink("https://chat.example", b64id(b"r" * 16))
    assert authority(listed, view) == (b64id(b"x" * 16), False)


async def test_a_role_the_server_invents_is_not_believed(
    server: RunningServer, clients: Any
) -> None:
    tamper = Tamper(server.node)
    host, bob, carol, _ = await three_in_a_room(server, clients)
    carol_view = next(
        e["member"]
        for e in tamper.recorded("member.joined")
        if e["member"]["member_id"] == carol.member_id
    )
    # The server labels Carol a co-host, with no statement, then with one Carol signed herself.
    self_signed = sign_role(
        carol._crypto._identity, unb64id(carol.room_id), unb64id(carol.member_id), "host", 1
    )
    for proof in (None, self_signed):
        await tamper.inject(
            bob.room_id,
            {
                "t": "member.updated",
                "room_id": bob.room_id,
                "member": {**carol_view, "role": "host", "role_proof": proof},
            },
        )
    await carol.send("an answer", quote={"asker": "Bobby", "text": "I feel worthless"})
    got = await text_of(bob)
    assert "quote" not in got.body
    assert bob.members[carol.member_id].role == "member"
    assert bob.refused["unproven_role"] == 2
    # The owner's signed promotion is believed, by members present and by later joiners.
    await host.set_role(carol.member_id, "host")
    await wait_until(lambda: bob.members[carol.member_id].role == "host", "bob trusts it", 5)
    late = await (await clients(server.url)).join(bob.link, "Late")
    assert late.members[carol.member_id].role == "host"
    assert late.members[host.member_id].role == "host"
    assert late.members[bob.member_id].role == "member"


async def test_a_role_change_needs_the_acting_hosts_statement(
    server: RunningServer, clients: Any
) -> None:
    host, bob, carol, _ = await three_in_a_room(server, clients)
    room_key, target = unb64id(host.room_id), unb64id(bob.member_id)
    assert host._crypto is not None and carol._crypto is not None
    cases = {
        "for another member": sign_role(host._crypto._identity, room_key, b"x" * 16, "host", 1),
        "for another role": sign_role(host._crypto._identity, room_key, target, "moderator", 1),
        "by someone else": sign_role(carol._crypto._identity, room_key, target, "host", 1),
    }
    for what, proof in cases.items():
        with pytest.raises(ChatError) as refused:
            await host._control(
                "member.role", member_id=bob.member_id, role="host", role_proof=proof
            )
        assert refused.value.code == "bad_role_proof", what
    assert bob.members[bob.member_id].role == "member"


async def test_a_removed_members_old_admission_does_not_bring_them_back(
    srv: RunningServer, clients: Any
) -> None:
    tamper = Tamper(srv.node)
    _, host, created = await session(srv, clients)
    ash = await admitted_member(srv, clients, host, created.link, "Ash")
    birch = await admitted_member(srv, clients, host, created.link, "Birch")
    await wait_until(lambda: birch.member_id in ash.members, "ash knows birch", 5)
    birch_view = next(
        e["member"]
        for e in tamper.recorded("member.joined")
        if e["member"]["member_id"] == birch.member_id
    )
    assert birch_view["admission"] is not None  # a host's admission, valid under the host's key
    await host.remove(birch.member_id)
    await wait_until(lambda: birch.member_id not in ash.members, "ash sees the removal", 5)
    # The server hands Birch back with her old card and the host's old admission.
    mark = len(tamper.direct_events)
    await tamper.inject(
        ash.room_id, {"t": "member.joined", "room_id": ash.room_id, "member": birch_view}
    )
    await host.send("after the removal")
    assert (await text_of(ash)).text == "after the removal"
    assert birch.member_id not in ash.members
    assert ash.refused["removed_member"] == 1
    await ash.send("to the room")
    sealed_to = [to for _, to, e in tamper.direct_events[mark:] if e.get("t") == "key"]
    assert sealed_to and birch.member_id not in sealed_to  # keys went out, none to Birch


async def test_a_hole_the_client_gives_up_on_is_announced_never_silent(
    server: RunningServer, clients: Any
) -> None:
    """A server that leaves a hole in the sequence and keeps numbering past it: once the client
    holds too many events back it skips the hole, and says that events were missed."""
    tamper = Tamper(server.node)
    alice, _, carol, _ = await three_in_a_room(server, clients)
    room_id = carol.room_id
    start = tamper.last_seq.get(room_id, carol.seq) + 2  # seq start - 1 never comes
    for n in range(300):
        junk = {"t": "msg", "room_id": room_id, "from": alice.member_id, "env": b"\x01" * 500}
        await tamper._room(room_id, {**junk, "seq": start + n, "ts": n})
    seen: list[Any] = []
    async with asyncio.timeout(5):
        async for ev in carol.events():
            seen.append(ev)
            if isinstance(ev, Reconnected):
                break
    assert ev == Reconnected(resumed=True, gap=True, member_id=carol.member_id)
