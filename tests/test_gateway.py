"""The single-node gateway with real Socket.IO clients against a real server on a random port."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from chatserver import e2ee
from chatserver.e2ee.charter import make_charter
from chatserver.protocol.ids import b64id
from tests.conftest import RunningServer
from tests.members import TestMember, prove_seat


async def create_listed(server: RunningServer, topic: str = "anxiety", **extra: object) -> str:
    owner = await server.client()
    ack = await owner.call("room.create", {"listed": True, "topic": topic, **extra})
    assert ack["ok"], ack
    return str(ack["room"]["room_id"])


async def test_healthz(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["ok"] is True


async def test_create_list_join_and_presence(server: RunningServer) -> None:
    room_id = await create_listed(server, "sleep")
    alice = await TestMember.join(server, room_id)
    assert alice.joined["you"]["role"] == "member"
    assert alice.joined["room"]["epoch"] >= 1
    assert alice.joined["members"][0]["member_id"] == alice.member_id
    assert " " in alice.joined["you"]["pseudonym"]  # "Adjective Animal"
    bob = await TestMember.join(server, room_id)
    data = await alice.next_other("member.joined")
    assert data["member"]["member_id"] == bob.member_id
    assert data["seq"] == bob.joined["seq"]
    assert "token" not in data["member"] and "token_hash" not in data["member"]

    lister = await server.client()
    listing = await lister.call("room.list", {})
    entry = next(r for r in listing["rooms"] if r["room_id"] == room_id)
    assert entry == {**entry, "topic": "sleep", "members": 2, "kind": "peer"}
    assert not any("pseudonym" in str(k) for k in entry)
    only = await lister.call("room.list", {"topic": "nothing-like-this"})
    assert only["rooms"] == []


async def test_messages_arrive_in_order_with_sequence_numbers(server: RunningServer) -> None:
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    bob = await TestMember.join(server, room_id)
    await alice.next_other("member.joined")
    acks = [await alice.send(f"message {i}") for i in range(20)]
    assert all(a["ok"] for a in acks), acks
    seqs = [a["seq"] for a in acks]
    assert seqs == list(range(seqs[0], seqs[0] + 20))
    for member in (alice, bob):
        got = []
        while len(got) < 20:
            _, data = await member.client.next("msg")
            got.append(data)
        assert [d["seq"] for d in got] == seqs
        assert all(d["from"] == alice.member_id and d["ts"] > 0 for d in got)
        assert all(len(d["stamp"]) == 32 for d in got)


async def test_bob_decrypts_alice(server: RunningServer) -> None:
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    bob = await TestMember.join(server, room_id)
    joined = await alice.next_other("member.joined")
    alice.crypto.add_member(joined["member"]["card"])
    assert (await alice.send("hello bob"))["ok"]
    _, key = await bob.client.next("key")
    assert key["from"] == alice.member_id
    bob.crypto.receive_key_share(key["skd"])
    _, msg = await bob.client.next("msg")
    opened = bob.crypto.decrypt(msg["env"])
    assert opened.text == "hello bob"


async def test_leave_bumps_epoch_and_old_epoch_is_refused(server: RunningServer) -> None:
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    bob = await TestMember.join(server, room_id)
    stale = bob.envelope("sealed before the leave")
    epoch = alice.joined["room"]["epoch"]
    await alice.next_other("member.joined")
    ack = await alice.client.call("room.leave", {"room_id": room_id})
    assert ack["ok"]
    _, left = await bob.client.next("member.left")
    assert left["member_id"] == alice.member_id and left["epoch"] == epoch + 1
    assert left["reason"] == "left"
    refused = await bob.client.call("msg.send", {"room_id": room_id, "env": stale})
    assert refused == {"ok": False, "error": {**refused["error"], "code": "stale_epoch"}}
    bob.crypto.remove_member(alice.identity.member_id)
    bob.crypto.set_epoch(left["epoch"])
    assert (await bob.send("after the leave"))["ok"]
    # Alice is out: she can no longer send into the room.
    gone = await alice.client.call("msg.send", {"room_id": room_id, "env": stale})
    assert gone["error"]["code"] == "not_in_room"


@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [
        ("room.create", "not a map", "bad_request"),
        ("room.create", {"listed": "yes", "topic": "x"}, "bad_request"),
        ("room.create", {"listed": True, "topic": "x" * 65}, "payload_too_large"),
        ("room.create", {"listed": True, "topic": "ok", "extra": 1}, "bad_request"),
        ("room.create", {"listed": False}, "bad_request"),
        ("room.join", {"room_id": "short"}, "bad_request"),
        ("room.join", {"room_id": "A" * 22, "card": b"x" * 5000}, "payload_too_large"),
        ("room.join", {"room_id": "A" * 22, "card": "not bytes"}, "bad_request"),
        ("room.join", {"room_id": "A" * 22, "card": b"x"}, "bad_request"),  # no seat_proof
        (
            "room.join",
            {"room_id": "A" * 22, "card": b"x", "seat_proof": b"p" * 64},
            "room_not_found",
        ),
        ("msg.send", {"room_id": "A" * 22, "env": b"x"}, "not_in_room"),
        ("msg.send", {"room_id": "A" * 22, "env": b"x" * 70_000}, "payload_too_large"),
        (
            "key.send",
            {"room_id": "A" * 22, "shares": [{"to": "B" * 21 + "A", "skd": 5}]},
            "bad_request",
        ),
        ("key.send", {"room_id": "A" * 22, "to": "B" * 21 + "A", "skd": b"x"}, "bad_request"),
        ("typing", {"room_id": "A" * 22, "on": "maybe"}, "bad_request"),
        ("room.list", [], "bad_request"),
        ("no.such.event", {}, "unknown_event"),
    ],
)
async def test_malformed_input_is_refused_and_connection_kept(
    server: RunningServer, event: str, payload: object, code: str
) -> None:
    client = await server.client()
    ack = await client.call(event, payload)
    assert ack["ok"] is False
    assert ack["error"]["code"] == code
    assert isinstance(ack["error"]["message"], str)
    assert "Traceback" not in ack["error"]["message"]
    assert (await client.call("room.list", {}))["ok"] is True


async def test_envelope_checks_on_the_server(server: RunningServer) -> None:
    room_id = await create_listed(server)
    other_room = await create_listed(server, "other")
    alice = await TestMember.join(server, room_id)
    bob = await TestMember.join(server, room_id)
    send = lambda env: alice.client.call("msg.send", {"room_id": room_id, "env": env})  # noqa: E731

    env = alice.envelope("one")
    tampered = bytearray(env)
    tampered[-1] ^= 1
    assert (await send(bytes(tampered)))["error"]["code"] == "bad_signature"
    assert (await send(b"\x09" + env[1:]))["error"]["code"] == "bad_envelope"
    assert (await send(env[:-10]))["error"]["code"] == "bad_envelope"
    # Bob's envelope sent over Alice's connection names another sender.
    assert (await send(bob.envelope("hi")))["error"]["code"] == "wrong_sender"
    # An envelope sealed for another room.
    foreign = TestMember(alice.client, other_room)
    assert (await send(foreign.envelope("x")))["error"]["code"] == "wrong_room"

    first = await send(env)
    assert first["ok"]
    again = await send(env)  # a retry after a lost ack: same answer
    assert again["ok"] and again["seq"] == first["seq"] and again["duplicate"] is True
    # A later envelope whose index is not higher than an accepted one is a replay.
    two = alice.envelope("two")
    three = alice.envelope("three")
    assert (await send(three))["ok"]
    assert (await send(two))["error"]["code"] == "replay"


async def test_private_room_needs_proof_of_the_link_secret(server: RunningServer) -> None:
    secret = e2ee.new_room_secret()
    room_id = b64id(secret.room_id)
    owner = await server.client()
    private = {
        "room_id": room_id,
        "join_key": secret.join_public,
        "kind": "peer",
        "charter": make_charter(secret, None, lobby=False),
    }
    unchartered = await owner.call("room.create", {**private, "charter": None})
    assert unchartered["error"]["code"] == "bad_charter"
    lying = await owner.call("room.create", {**private, "host_id": b64id(b"h" * 16)})
    assert lying["error"]["code"] == "bad_charter"  # the charter names no host
    created = await owner.call("room.create", private)
    assert created["ok"], created
    assert created["room"]["charter"] == private["charter"]
    again = await owner.call("room.create", private)
    assert again["error"]["code"] == "room_exists"

    stranger = TestMember(await server.client(), room_id)
    no_proof = await stranger.join_ack()
    assert no_proof["error"]["code"] == "join_proof_required"
    forged = e2ee.new_room_secret()
    wrong = await stranger.join_ack(forged)
    assert wrong["error"]["code"] == "bad_proof"
    # A proof for another nonce (replayed challenge) fails too.
    old_nonce_proof = secret.sign_join(b"\x00" * 32, stranger.identity.member_id)
    fresh = await prove_seat(stranger.client, room_id, stranger.identity)
    replay = await stranger.client.call(
        "room.join",
        {"room_id": room_id, "card": stranger.crypto.card, "proof": old_nonce_proof, **fresh},
    )
    assert replay["error"]["code"] == "bad_proof"
    friend = await TestMember.join(server, room_id, secret)
    assert friend.joined["room"]["visibility"] == "unlisted"
    listing = await owner.call("room.list", {})
    assert room_id not in [r["room_id"] for r in listing["rooms"]]


async def test_sealed_keys_go_to_one_member_only(server: RunningServer) -> None:
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    bob = await TestMember.join(server, room_id)
    carol = await TestMember.join(server, room_id)
    for card in (bob.crypto.card, carol.crypto.card):
        alice.crypto.add_member(card)
    shares = dict(alice.crypto.pending_key_shares())
    to_bob = shares[bob.identity.member_id]
    ack = await alice.client.call(
        "key.send", {"room_id": room_id, "shares": [{"to": bob.member_id, "skd": to_bob}]}
    )
    assert ack == {"ok": True, "delivered": 1, "refused": []}
    _, key = await bob.client.next("key")
    assert key["skd"] == to_bob
    mismatched = await alice.client.call(
        "key.send", {"room_id": room_id, "shares": [{"to": carol.member_id, "skd": to_bob}]}
    )
    assert mismatched["refused"] == [{"to": carol.member_id, "code": "unknown_recipient"}]
    nobody = await alice.client.call(
        "key.send", {"room_id": room_id, "shares": [{"to": "Z" * 21 + "A", "skd": to_bob}]}
    )
    assert nobody["refused"] == [{"to": "Z" * 21 + "A", "code": "unknown_recipient"}]
    await asyncio.sleep(0.1)
    assert not [e for e in carol.client.drain() if e[0] == "key"]


async def test_typing_reaches_the_room(server: RunningServer) -> None:
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    bob = await TestMember.join(server, room_id)
    assert (await alice.client.call("typing", {"room_id": room_id, "on": True}))["ok"]
    _, data = await bob.client.next("typing")
    assert data == {"room_id": room_id, "member_id": alice.member_id, "on": True}


async def test_rename(server: RunningServer) -> None:
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    bob = await TestMember.join(server, room_id, nickname="River")
    assert bob.joined["you"]["pseudonym"] == "River"
    taken = await alice.client.call("room.rename", {"room_id": room_id, "nickname": "river"})
    assert taken["error"]["code"] == "nickname_taken"
    reserved = await alice.client.call("room.rename", {"room_id": room_id, "nickname": "Therapist"})
    assert reserved["error"]["code"] == "nickname_reserved"
    ok = await alice.client.call("room.rename", {"room_id": room_id, "nickname": "Willow"})
    assert ok["ok"] and ok["you"]["pseudonym"] == "Willow"
    _, data = await bob.client.next("member.updated")
    assert data["member"]["pseudonym"] == "Willow"


async def test_rate_limit_carries_retry_after(make_server) -> None:  # type: ignore[no-untyped-def]
    server = await make_server(msg_rate_per_s=1.0, msg_burst=3)
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    acks = [await alice.send(f"m{i}") for i in range(5)]
    assert [a["ok"] for a in acks[:3]] == [True, True, True]
    assert acks[3]["error"]["code"] == "rate_limited"
    assert 0 < acks[3]["error"]["retry_after"] <= 1.0


async def test_resume_after_reconnect_replays_what_was_missed(server: RunningServer) -> None:
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    bob = await TestMember.join(server, room_id)
    alice.crypto.add_member(bob.crypto.card)
    token, last_seq = bob.joined["you"]["token"], bob.joined["seq"]
    await bob.client.close()
    await asyncio.sleep(0.1)
    sent = [await alice.send(f"while away {i}") for i in range(3)]
    again = await server.client()
    ack = await again.call(
        "room.resume",
        {
            "room_id": room_id,
            "member_id": bob.member_id,
            "token": token,
            "epoch": bob.joined["room"]["epoch"],
            "last_seq": last_seq,
            **await prove_seat(again, room_id, bob.identity),
        },
    )
    assert ack["ok"], ack
    assert ack["gap"] is False
    assert ack["room"]["epoch"] == bob.joined["room"]["epoch"]  # no bump: the seat was kept
    assert [e["seq"] for e in ack["events"] if e["event"] == "msg"] == [s["seq"] for s in sent]
    assert any(k["event"] == "key" for k in ack["keys"])
    other = await server.client()
    bad = await other.call(
        "room.resume",
        {
            "room_id": room_id,
            "member_id": bob.member_id,
            "token": b"\x00" * 32,
            "epoch": 1,
            "last_seq": 0,
            **await prove_seat(other, room_id, bob.identity),
        },
    )
    assert bad["error"]["code"] == "resume_failed"


async def test_seat_is_released_after_the_resume_grace(make_server) -> None:  # type: ignore[no-untyped-def]
    server = await make_server(resume_grace_s=5.0)
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    bob = await TestMember.join(server, room_id)
    await alice.next_other("member.joined")
    seats = len(server.node.registry.seats)
    await bob.client.close()
    for _ in range(100):  # let the server see the disconnect before time jumps
        if len(server.node.registry.seats) < seats:
            break
        await asyncio.sleep(0.05)
    # The disconnect handler then records the seat's deadline (a Redis round trip away): move
    # time past the grace until the sweeper sees it lapse, however long that write took.
    left = None
    for _ in range(10):
        server.clock.advance(6)
        try:
            _, left = await alice.client.next("member.left", timeout=0.5)
            break
        except TimeoutError:
            continue
    assert left is not None, "the seat never lapsed"
    assert left["member_id"] == bob.member_id and left["reason"] == "disconnected"


async def test_empty_room_expires_after_grace(make_server) -> None:  # type: ignore[no-untyped-def]
    server = await make_server(empty_grace_s=600)
    room_id = await create_listed(server, "expiring")
    lister = await server.client()
    # An empty room is not listed, but it is there (room.info) until the grace is over.
    assert room_id not in [r["room_id"] for r in (await lister.call("room.list", {}))["rooms"]]
    assert (await lister.call("room.info", {"room_id": room_id}))["ok"]
    server.clock.advance(599)
    await asyncio.sleep(0.2)
    assert (await lister.call("room.info", {"room_id": room_id}))["ok"]
    server.clock.advance(2)
    await asyncio.sleep(0.2)
    gone = await lister.call("room.info", {"room_id": room_id})
    assert gone["error"]["code"] == "room_not_found"


async def test_room_ends_at_its_maximum_lifetime(make_server) -> None:  # type: ignore[no-untyped-def]
    server = await make_server(max_lifetime_s=3600)
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    server.clock.advance(3601)
    _, ended = await alice.client.next("room.ended")
    assert ended["reason"] == "lifetime"
    gone = await alice.client.call("msg.send", {"room_id": room_id, "env": alice.envelope("x")})
    assert gone["error"]["code"] == "not_in_room"


async def test_polling_transport_is_refused(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        url = server.url + "/socket.io/?EIO=4&transport=polling"
        async with http.get(url) as resp:
            assert resp.status == 400


async def test_permessage_deflate_is_never_negotiated(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        url = server.url + "/socket.io/?EIO=4&transport=websocket"
        async with http.ws_connect(url, compress=15) as ws:
            assert ws.compress == 0
            assert "Sec-WebSocket-Extensions" not in ws._response.headers
            opening = await ws.receive(timeout=5)
            assert opening.data.startswith("0{")


async def test_a_room_reserves_its_host_seat(server: RunningServer) -> None:
    owner = await server.client()
    identity = e2ee.Identity.generate()
    refused = await owner.call("room.create", {"listed": True, "topic": "grief", "kind": "session"})
    assert refused["error"]["code"] == "not_signed_in"  # sessions: session.create only
    ack = await owner.call(
        "room.create",
        {"listed": True, "topic": "grief", "host_id": b64id(identity.member_id), "capacity": 2},
    )
    assert ack["ok"], ack
    room_id = ack["room"]["room_id"]
    member = await TestMember.join(server, room_id)
    assert member.joined["you"]["role"] == "member"
    # Two places, one kept for the absent owner: nobody else gets in before them.
    late = TestMember(await server.client(), room_id)
    assert (await late.join_ack())["error"]["code"] == "room_full"
    host = TestMember(owner, room_id, identity)
    assert (await host.join_ack())["ok"]
    assert host.joined["you"]["role"] == "host"
    assert member.joined["room"]["host_id"] == host.member_id


async def test_ids_have_one_spelling(server: RunningServer) -> None:
    room_id = await create_listed(server)
    alias = room_id[:-1] + {"A": "B", "Q": "R", "g": "h", "w": "x"}[room_id[-1]]
    client = await server.client()
    ack = await client.call("room.challenge", {"room_id": alias})
    assert ack["error"]["code"] == "bad_request"


async def test_joining_twice_with_the_same_card_leaves_the_first_seat_intact(
    server: RunningServer,
) -> None:
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    bob = await TestMember.join(server, room_id)
    twin = TestMember(await server.client(), room_id, alice.identity)
    assert (await twin.join_ack())["error"]["code"] == "already_member"
    # Alice still holds her seat: keys reach her and she can send.
    bob.crypto.add_member(alice.crypto.card)
    assert (await bob.send("still there?"))["ok"]
    _, key = await alice.client.next("key")
    assert key["from"] == bob.member_id
    assert (await alice.send("yes"))["ok"]


async def test_metrics_count_without_naming_anyone(server: RunningServer) -> None:
    room_id = await create_listed(server)
    alice = await TestMember.join(server, room_id)
    await TestMember.join(server, room_id)
    assert (await alice.send("counted, not logged"))["ok"]
    await alice.client.call("msg.send", {"room_id": room_id, "env": b"junk"})
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert 'chatserver_envelopes_total{outcome="accepted"} 1.0' in text
    assert 'chatserver_envelopes_total{outcome="unknown_version"} 1.0' in text
    assert "chatserver_members_held 2.0" in text
    assert 'chatserver_requests_total{event="room.join",result="ok"} 2.0' in text
    assert room_id not in text
    assert alice.member_id not in text


async def test_http_answers_carry_security_headers(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as resp:
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "connect-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_disappearing_messages_are_a_room_setting_shown_to_all(server: RunningServer) -> None:
    room_id = await create_listed(server, "vanishing", disappear_after_s=300)
    alice = await TestMember.join(server, room_id)
    assert alice.joined["room"]["disappear_after_s"] == 300
    plain = await TestMember.join(server, await create_listed(server, "staying"))
    assert plain.joined["room"]["disappear_after_s"] == 0
    owner = await server.client()
    too_long = await owner.call(
        "room.create", {"listed": True, "topic": "x", "disappear_after_s": 86_401}
    )
    assert too_long["error"]["code"] == "bad_request"
