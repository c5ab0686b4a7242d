"""Seat takeover, as a member or link holder would try it: a card is public, the seat is its key.

Every card reaches every member (`members` in the join ack, `member.joined`), so before the seat
proof anyone could `room.join` with the host's card and sit in the host's seat. These tests try
exactly that, and its resume, knock and readmission variants, against real nodes (memory and
Redis) with the Python client and bare Socket.IO connections; each must be refused with a
catalogued error and change nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatserver import e2ee
from chatserver.client import MemberJoined
from chatserver.e2ee.seat import seat_message, sign_seat, verify_seat_proof
from chatserver.gateway.state import CHALLENGE_TTL_S, Connection, Limits
from chatserver.protocol import GATEWAY_ERRORS
from chatserver.protocol.ids import unb64id
from tests.conftest import Client, RunningServer, ServerFactory
from tests.members import prove_seat
from tests.test_gateway import create_listed
from tests.test_moderation import FAST, admitted_member, next_event, session


@pytest.fixture
async def srv(make_server: ServerFactory, tmp_path: Path) -> RunningServer:
    """A node that can sign therapist credentials (sessions)."""
    return await make_server(key_file=str(tmp_path / "server.key"), **FAST)


def card_of(room: Any, member_id: str) -> bytes:
    """The card every member holds for `member_id`: what an attacker in the room can copy."""
    return bytes(room.members[member_id].card)


async def join_with(
    raw: Client, room_id: str, card: bytes, signer: e2ee.Identity, **extra: Any
) -> Any:
    """room.join presenting `card`, answering the challenge with `signer`'s key."""
    proofs = await prove_seat(raw, room_id, signer)
    return await raw.call("room.join", {"room_id": room_id, "card": card, **proofs, **extra})


async def test_a_member_cannot_take_the_hosts_seat(srv: RunningServer, clients: Any) -> None:
    host_c, member_c = await clients(srv.url), await clients(srv.url)
    created = await host_c.create_room(listed=True, topic="evening")
    assert created.host_link is not None
    host = await host_c.join(created.host_link)
    member = await member_c.join(created.link)
    host_card = card_of(member, host.member_id)
    await host.leave()

    attacker = await srv.client()
    mine = e2ee.Identity.generate()
    stolen = await join_with(attacker, host.room_id, host_card, mine)
    assert stolen["error"]["code"] == "bad_seat_proof", stolen
    # No proof at all, and a proof without asking for a challenge, are refused too.
    bare = await attacker.call("room.join", {"room_id": host.room_id, "card": host_card})
    assert bare["error"]["code"] == "bad_request"
    unchallenged = await attacker.call(
        "room.join",
        {"room_id": host.room_id, "card": host_card, "seat_proof": b"\x00" * 64},
    )
    assert unchallenged["error"]["code"] == "no_challenge"
    # Nothing changed: the room still has one member, and the real host takes the seat back.
    assert list(member.members) == [member.member_id]
    back = await (await clients(srv.url)).join(created.host_link)
    assert back.role == "host"
    joined = await next_event(member, MemberJoined)
    assert joined.member_id == host.member_id and joined.role == "host"


async def test_a_challenge_answers_one_request_on_its_own_connection(
    srv: RunningServer,
) -> None:
    room_id = await create_listed(srv)
    me = e2ee.Identity.generate()
    card = me.card(unb64id(room_id), 1)
    a, b = await srv.client(), await srv.client()
    nonce = (await a.call("room.challenge", {"room_id": room_id}))["nonce"]
    proof = sign_seat(me, unb64id(room_id), nonce)
    # Another connection cannot spend a's challenge.
    other = await b.call("room.join", {"room_id": room_id, "card": card, "seat_proof": proof})
    assert other["error"]["code"] == "no_challenge"
    # A proof over a nonce from a different challenge does not verify.
    await a.call("room.challenge", {"room_id": room_id})
    stale = await a.call("room.join", {"room_id": room_id, "card": card, "seat_proof": proof})
    assert stale["error"]["code"] == "bad_seat_proof"
    # The challenge was spent by that refusal: asking again is the only way on.
    spent = await a.call("room.join", {"room_id": room_id, "card": card, "seat_proof": proof})
    assert spent["error"]["code"] == "no_challenge"
    ok = await join_with(a, room_id, card, me)
    assert ok["ok"], ok


async def test_a_challenge_lapses(srv: RunningServer) -> None:
    room_id = await create_listed(srv)
    me = e2ee.Identity.generate()
    raw = await srv.client()
    nonce = (await raw.call("room.challenge", {"room_id": room_id}))["nonce"]
    srv.clock.advance(CHALLENGE_TTL_S + 1)
    late = await raw.call(
        "room.join",
        {
            "room_id": room_id,
            "card": me.card(unb64id(room_id), 1),
            "seat_proof": sign_seat(me, unb64id(room_id), nonce),
        },
    )
    assert late["error"]["code"] == "no_challenge"


async def test_resume_needs_the_seats_key_not_only_its_token(
    srv: RunningServer, clients: Any
) -> None:
    room_id = await create_listed(srv)
    victim = e2ee.Identity.generate()
    first = await srv.client()
    card = victim.card(unb64id(room_id), 1)
    joined = await join_with(first, room_id, card, victim)
    assert joined["ok"], joined
    token = joined["you"]["token"]
    await first.close()
    # Someone who got hold of the token (a shared device's storage) but not the key.
    thief = await srv.client()
    resume = {
        "room_id": room_id,
        "member_id": joined["you"]["member_id"],
        "token": token,
        "epoch": joined["room"]["epoch"],
        "last_seq": 0,
    }
    wrong = await thief.call(
        "room.resume", {**resume, **await prove_seat(thief, room_id, e2ee.Identity.generate())}
    )
    assert wrong["error"]["code"] == "bad_seat_proof"
    right = await thief.call("room.resume", {**resume, **await prove_seat(thief, room_id, victim)})
    assert right["ok"], right


async def test_knock_and_readmission_need_the_cards_key(srv: RunningServer, clients: Any) -> None:
    _, host, created = await session(srv, clients)
    participant = await admitted_member(srv, clients, host, created.link, "Ash")
    card = card_of(host, participant.member_id)
    link = created.link
    # Knocking with someone else's card (here: an admitted participant's).
    knocker = await srv.client()
    proofs = await prove_seat(knocker, link.room_id, e2ee.Identity.generate(), link.secret)
    knock = await knocker.call("lobby.knock", {"room_id": link.room_id, "card": card, **proofs})
    assert knock["error"]["code"] == "bad_seat_proof"
    # Readmission: the participant leaves; their admission lets the same card back in, so a
    # stranger presenting that card would have walked past the lobby.
    await participant.leave()
    stranger = await srv.client()
    proofs = await prove_seat(stranger, link.room_id, e2ee.Identity.generate(), link.secret)
    walk_in = await stranger.call("room.join", {"room_id": link.room_id, "card": card, **proofs})
    assert walk_in["error"]["code"] == "bad_seat_proof"
    assert participant.member_id not in host.members


def test_the_seat_proof_verifies_only_its_own_room_nonce_and_member() -> None:
    me, other = e2ee.Identity.generate(), e2ee.Identity.generate()
    room, nonce = b"r" * 16, b"n" * 32
    proof = sign_seat(me, room, nonce)
    assert verify_seat_proof(me.ed_public, room, nonce, me.member_id, proof)
    assert not verify_seat_proof(other.ed_public, room, nonce, me.member_id, proof)
    assert not verify_seat_proof(me.ed_public, b"s" * 16, nonce, me.member_id, proof)
    assert not verify_seat_proof(me.ed_public, room, b"m" * 32, me.member_id, proof)
    assert not verify_seat_proof(me.ed_public, room, nonce, other.member_id, proof)
    assert not verify_seat_proof(me.ed_public, room, nonce, me.member_id, proof[:63])
    # A link proof (DS "join") over the same bytes is not a seat proof (DS "seat").
    assert seat_message(room, nonce, me.member_id).startswith(b"chatenv/v1 seat\x00")


def test_a_challenge_is_single_use_and_expires() -> None:
    limit = (1.0, 1)
    conn = Connection("sid", Limits(limit, limit, limit, limit, limit))
    conn.remember_challenge("room", b"n" * 32, now=100.0)
    assert conn.take_challenge("room", 100.0 + CHALLENGE_TTL_S) == b"n" * 32
    assert conn.take_challenge("room", 100.0) is None
    conn.remember_challenge("room", b"n" * 32, now=100.0)
    assert conn.take_challenge("room", 100.0 + CHALLENGE_TTL_S + 0.001) is None


def test_the_new_errors_are_catalogued() -> None:
    assert "bad_seat_proof" in GATEWAY_ERRORS and "no_challenge" in GATEWAY_ERRORS
