"""Therapist-led sessions and moderation against real nodes (memory and Redis) and real clients:
credentials, the lobby, host controls and their refusals, reports with franking, Q&A, the end."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Awaitable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from chatserver import credentials, e2ee
from chatserver.client import (
    ChatClient,
    ChatError,
    LobbyUpdate,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    Message,
    MessageHidden,
    Question,
    ReportReceived,
    Room,
    RoomEnded,
    RoomUpdated,
    rules_text,
)
from chatserver.protocol.ids import unb64id
from tests.conftest import Client, RunningServer, ServerFactory
from tests.members import prove_seat

E = TypeVar("E")
FAST = {"msg_rate_per_s": 1000.0, "msg_burst": 1000, "control_burst": 200, "create_burst": 50}


@pytest.fixture
async def srv(make_server: ServerFactory, tmp_path: Path) -> RunningServer:
    # Loopback is the trusted proxy, so a test can give each member its own address.
    return await make_server(
        key_file=str(tmp_path / "server.key"), trusted_proxies="127.0.0.1/32", **FAST
    )


def issue(server: RunningServer, name: str = "Dr. A. Rao", days: float = 30) -> str:
    assert server.node.server_key is not None
    token, _ = credentials.issue(server.node.server_key, name, days, server.clock.now())
    return token


async def next_event(room: Room, kind: type[E], timeout: float = 5.0) -> E:
    async with asyncio.timeout(timeout):
        async for ev in room.events():
            if isinstance(ev, kind):
                return ev
    raise AssertionError(f"the stream ended before a {kind.__name__}")


async def text_of(room: Room, timeout: float = 5.0) -> Message:
    async with asyncio.timeout(timeout):
        async for ev in room.events():
            if isinstance(ev, Message) and not ev.own:
                return ev
    raise AssertionError("no message")


async def knows(sender: Room, *others: Room, timeout: float = 5.0) -> None:
    """Wait until `sender` has seen every one of `others` join: a sender shares its keys with the
    members it knows when it sends (no history for later joiners)."""
    async with asyncio.timeout(timeout):
        while not {o.member_id for o in others} <= set(sender.members):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def session(
    server: RunningServer, clients: Any, **options: Any
) -> tuple[ChatClient, Room, Any]:
    therapist = await clients(server.url)
    await therapist.sign_in(issue(server))
    created = await therapist.create_session(title="Thursday group", **options)
    assert created.host_link is not None
    host = await therapist.join(created.host_link)
    return therapist, host, created


async def admitted_member(
    server: RunningServer,
    clients: Any,
    host: Room,
    link: Any,
    nickname: str,
    address: str | None = None,
) -> Room:
    """A member the host admits; `address` is what the trusted proxy (loopback, in `srv`) says."""
    headers = {"X-Forwarded-For": address} if address else None
    c = await clients(server.url, headers=headers)
    waiting = await c.knock(link, nickname, accept_rules=True)
    update = await next_event(host, LobbyUpdate)
    assert update.member_id == waiting.member_id
    await host.admit(waiting.member_id, update.card)
    assert await asyncio.wait_for(waiting.admitted(), 5)
    room = await waiting.enter()
    await next_event(host, MemberJoined)
    return room


async def refused(code: str, call: Awaitable[Any]) -> None:
    with pytest.raises(ChatError) as info:
        await call
    assert info.value.code == code, info.value


# --- server key and credentials -----------------------------------------------------------


async def test_server_key_file_is_private_and_shared(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    path = tmp_path / "state" / "server.key"
    a = await make_server(key_file=str(path))
    b = await make_server(key_file=str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # Both nodes stamp alike (the stamp key derives from the shared key) and publish one key.
    assert a.node.stamp_key == b.node.stamp_key
    assert a.node.server_key is not None and b.node.server_key is not None
    assert a.node.stamp_key != a.node.server_key.seed
    url = a.url + "/.well-known/chatserver-therapists.json"
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        published = await r.json()
        assert r.headers["Cache-Control"] == "no-store"
    assert published["keys"][0]["public_key"] == credentials.b64(a.node.server_key.public)
    assert "harassment" in published["report_reasons"]


async def test_credentials_expired_revoked_tampered(srv: RunningServer, clients: Any) -> None:
    c = await clients(srv.url)
    token = issue(srv, days=1)
    cert, seed = credentials.split_token(token)
    # Tampered: one byte of the name changed.
    bad = bytearray(cert)
    bad[60] ^= 1
    tampered = f"cst1.{credentials.b64(bytes(bad))}.{credentials.b64(seed)}"
    await refused("credential_tampered", c.sign_in(tampered))
    # Another key's proof of possession.
    other_seed = os.urandom(32)
    stolen = f"cst1.{credentials.b64(cert)}.{credentials.b64(other_seed)}"
    await refused("credential_tampered", c.sign_in(stolen))
    # Signed in, then revoked: creating a session is refused with the reason.
    await c.sign_in(token)
    cred = credentials.parse_cert(cert)
    await srv.node.denylist.add(credentials.REVOKED, cred.cred_id, srv.clock.now() + 3600)
    await refused("credential_revoked", c.create_session())
    await refused("credential_revoked", c.sign_in(token))
    # Expired.
    fresh = issue(srv, days=1)
    await c.sign_in(fresh)
    srv.clock.advance(2 * 86400)
    await refused("credential_expired", c.create_session())
    await refused("credential_expired", c.sign_in(fresh))


async def test_session_needs_sign_in_and_a_matching_badge(srv: RunningServer, clients: Any) -> None:
    c = await clients(srv.url)
    await refused("not_signed_in", c.create_session())
    await c.sign_in(issue(srv))
    # A badge made for another credential is refused.
    other_cert, other_seed = credentials.split_token(issue(srv, "Someone Else"))
    real = c._therapist
    assert real is not None
    c._therapist = (other_cert, other_seed)
    await refused("bad_badge", c.create_session())
    c._therapist = real
    created = await c.create_session(listed=True, topic="Grief group", starts_at=None)
    assert created.host_link is not None
    await c.join(created.host_link)  # the directory lists rooms someone is in
    listed = await c.list_rooms()
    entry = next(e for e in listed if e["room_id"] == created.room_id)
    assert srv.node.server_key is not None
    verified = credentials.verify_badge(
        srv.node.server_key.public,
        entry["badge"],
        unb64id(created.room_id),
        unb64id(entry["host_id"]),
        srv.clock.now(),
    )
    assert verified.name == "Dr. A. Rao"


# --- the lobby ----------------------------------------------------------------------------


async def knock_raw(server: RunningServer, link: Any) -> tuple[Client, str]:
    """A participant on a bare Socket.IO client, recording every push it ever receives."""
    raw = await server.client()
    identity = e2ee.Identity.generate()
    card = identity.card(unb64id(link.room_id), 1)
    proofs = await prove_seat(raw, link.room_id, identity, link.secret)
    ack = await raw.call("lobby.knock", {"room_id": link.room_id, "card": card, **proofs})
    assert ack["ok"], ack
    return raw, ack["member_id"]


async def test_lobby_admit_two_decline_one(srv: RunningServer, clients: Any) -> None:
    _, host, created = await session(srv, clients)
    assert host.role == "host"
    a_c, b_c = await clients(srv.url), await clients(srv.url)
    wa = await a_c.knock(created.link, "Ash")
    wb = await b_c.knock(created.link, "Birch")
    declined_raw, declined_id = await knock_raw(srv, created.link)
    # Waiters see the title's ciphertext, the badge and the start, nothing of the conversation.
    assert wa.info["badge"] and wa.info["host_id"] == host.member_id
    assert "members" not in wa.info
    waiting = await host.lobby_waiting()
    assert {w["member_id"] for w in waiting} == {wa.member_id, wb.member_id, declined_id}
    # A waiter cannot walk in with room.join before being admitted.
    await refused("lobby_required", a_c.join(created.link))
    await host.decline(declined_id)
    assert await host.admit_all() == 2  # "admit all": everyone still waiting
    assert await asyncio.wait_for(wa.admitted(), 5)
    assert await asyncio.wait_for(wb.admitted(), 5)
    a, b = await wa.enter(), await wb.enter()
    await knows(host, a, b)
    await host.send("welcome both")
    assert (await text_of(a)).text == "welcome both"
    assert (await text_of(b)).text == "welcome both"
    await a.send("thanks")
    assert (await text_of(b)).text == "thanks"
    _, declined = await declined_raw.next("lobby.declined")
    assert declined["reason"] == "declined"
    await asyncio.sleep(0.3)
    seen = {name for name, _ in declined_raw.drain()}
    assert not seen & {"msg", "key", "member.joined", "member.left", "member.updated"}, seen


async def test_admission_is_checked_by_server_and_members(srv: RunningServer, clients: Any) -> None:
    _, host, created = await session(srv, clients)
    w_c = await clients(srv.url)
    waiting = await w_c.knock(created.link)
    update = await next_event(host, LobbyUpdate)
    forged = host._sign_admission(b"another card" + bytes(200))
    forged_call = host._control("lobby.admit", member_id=waiting.member_id, admission=forged)
    await refused("bad_admission", forged_call)
    await host.admit(waiting.member_id, update.card)
    assert await asyncio.wait_for(waiting.admitted(), 5)
    member = await waiting.enter()
    # The member's client verified every admission and the host's card: keys flow both ways.
    await member.send("hello host")
    assert (await text_of(host)).text == "hello host"


async def test_before_the_start_only_the_lobby_fills(srv: RunningServer, clients: Any) -> None:
    # A start 20 s ahead, and a jump to it shorter than the presence TTL (30 s): a longer jump
    # also lapses every seat's and waiter's presence, which raced the admission under load.
    _, host, created = await session(srv, clients, starts_at=srv.clock.now() + 20)
    w_c = await clients(srv.url)
    waiting = await w_c.knock(created.link)
    update = await next_event(host, LobbyUpdate)
    await refused("not_started", host.admit(waiting.member_id, update.card))
    srv.clock.advance(21)
    await host.admit(waiting.member_id, update.card)
    assert await asyncio.wait_for(waiting.admitted(), 5)


async def test_ground_rules_are_shown_then_accepted_before_entering(
    srv: RunningServer, clients: Any
) -> None:
    rules = "Be kind. What is said here stays."
    _, host, created = await session(srv, clients, rules=rules)
    w_c = await clients(srv.url)
    # The refusal carries the rules (sealed for link holders), so they are read before accepting.
    with pytest.raises(ChatError) as first:
        await w_c.knock(created.link)
    assert first.value.code == "rules_not_accepted"
    assert rules_text(created.link, first.value.details["rules"]) == rules
    waiting = await w_c.knock(created.link, accept_rules=True)
    assert rules_text(created.link, waiting.info["rules"]) == rules
    # The admitted waiter accepted them at the knock: it enters without accepting again.
    update = await next_event(host, LobbyUpdate)
    await host.admit(waiting.member_id, update.card)
    assert await waiting.admitted()
    await waiting.enter()


async def test_rooms_without_a_lobby_show_their_rules_before_joining(
    srv: RunningServer, clients: Any
) -> None:
    owner_c, guest_c = await clients(srv.url), await clients(srv.url)
    created = await owner_c.create_room()
    assert created.host_link is not None
    owner = await owner_c.join(created.host_link)  # the owner sets the rules, never accepts them
    await owner.settings(rules=b"No advice about medication.")
    with pytest.raises(ChatError) as refusal:
        await guest_c.join(created.link)
    assert refusal.value.code == "rules_not_accepted"
    assert refusal.value.details["rules"] == b"No advice about medication."
    guest = await guest_c.join(created.link, accept_rules=True)
    assert guest.role == "member"


# --- controls -----------------------------------------------------------------------------


async def test_controls_work_and_are_refused_to_members(srv: RunningServer, clients: Any) -> None:
    _, host, created = await session(srv, clients)
    a = await admitted_member(srv, clients, host, created.link, "Ash")
    b = await admitted_member(srv, clients, host, created.link, "Birch")
    # Members without the role: every control refused with a catalogued code.
    await refused("forbidden", a.mute(b.member_id))
    await refused("forbidden", a.remove(b.member_id))
    await refused("forbidden", a.settings(locked=True))
    await refused("forbidden", a.settings(paused=True))
    await refused("forbidden", a.settings(slow_mode_s=5))
    await refused("forbidden", a.set_role(b.member_id, "moderator"))
    await refused("forbidden", a.end())
    await refused("not_staff", a.lobby_waiting())
    # Mute: the member is told, and cannot send until unmuted.
    await host.mute(a.member_id, 60)
    updated = await next_event(a, MemberUpdated)
    assert updated.member_id == a.member_id
    await refused("muted", a.send("hello?"))
    await host.unmute(a.member_id)
    await a.send("back")
    # Pause: only hosts and moderators write.
    await host.settings(paused=True)
    assert (await next_event(b, RoomUpdated)).paused
    await refused("paused", b.send("x"))
    await host.send("paused note")
    await host.settings(paused=False)
    # Slow mode: one message per N seconds per member.
    await host.settings(slow_mode_s=30)
    await b.send("first")
    with pytest.raises(TimeoutError):  # the client waits out `rate_limited` (slow mode)
        await asyncio.wait_for(b.send("second"), 1.0)
    await host.settings(slow_mode_s=0)
    # Promote to moderator: now b may mute a.
    await host.set_role(b.member_id, "moderator")
    await next_event(b, MemberUpdated)
    await b.mute(a.member_id)
    # Lock: nobody new gets in.
    await host.settings(locked=True)
    late = await clients(srv.url)
    await refused("room_locked", late.knock(created.link))
    await host.settings(locked=False)
    # Remove with a ban: epoch bump, the member is out, and cannot walk back in.
    epoch = host.epoch
    await host.remove(a.member_id, ban=True)
    left = await next_event(host, MemberLeft)
    assert left.reason == "removed" and host.epoch == epoch + 1
    await refused("banned", late.knock(created.link))  # same address (127.0.0.1), new identity


async def test_peer_room_creator_moderates(srv: RunningServer, clients: Any) -> None:
    creator_c, a_c, b_c = [await clients(srv.url) for _ in range(3)]
    created = await creator_c.create_room()  # a peer room: the creator holds the host seat
    assert created.host_link is not None
    creator = await creator_c.join(created.host_link)
    a, b = await a_c.join(created.link), await b_c.join(created.link)
    await creator.set_role(a.member_id, "moderator")
    await next_event(a, MemberUpdated)
    await a.settings(slow_mode_s=10)
    await a.mute(b.member_id)
    await a.remove(b.member_id, ban=True)
    await next_event(creator, MemberLeft)
    await refused("banned", b_c.join(created.link))


async def test_a_ban_holds_across_the_ipv6_64_and_across_nodes(
    make_server: ServerFactory, clients: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A member on node B is banned by the host on node A (on Redis; one node in memory): the
    address key is added by the node that knew the address, and a fresh identity from another
    address of the same /64 is refused on either node; another /64 gets in."""
    key_file = str(tmp_path / "server.key")
    a = await make_server(key_file=key_file, trusted_proxies="127.0.0.1/32", **FAST)
    on_redis = "redis" in request.node.callspec.id
    b = (
        await make_server(key_file=key_file, trusted_proxies="127.0.0.1/32", **FAST)
        if on_redis
        else a
    )

    def via(node: RunningServer, address: str) -> Awaitable[ChatClient]:
        return clients(node.url, headers={"X-Forwarded-For": address})

    creator_c = await clients(a.url)
    created = await creator_c.create_room()
    assert created.host_link is not None
    host = await creator_c.join(created.host_link)
    target = await (await via(b, "2001:db8:1:2::5")).join(created.link)
    await next_event(host, MemberJoined)
    await host.remove(target.member_id, ban=True)
    await next_event(host, MemberLeft)

    async def banned_key_recorded() -> bool:
        current = await a.node.store.load(host.room_id)
        return current is not None and any(k.startswith("addr:") for k in current.room.bans)

    for _ in range(100):
        if await banned_key_recorded():
            break
        await asyncio.sleep(0.02)
    assert await banned_key_recorded()
    for node in (a, b):
        await refused("banned", (await via(node, "2001:db8:1:2::99")).join(created.link))
    assert (await (await via(a, "2001:db8:1:3::1")).join(created.link)).member_id


# --- reports ------------------------------------------------------------------------------


async def test_three_reports_from_one_address_group_do_not_hide_a_message(
    srv: RunningServer, clients: Any
) -> None:
    """One person with three seats (three addresses of one IPv6 /64) reports a message three
    times: the message stays (distinct addresses hide it: the test above)."""
    creator_c = await clients(srv.url)
    created = await creator_c.create_room(listed=True, topic="reports")
    seats = [f"2001:db8:5:7::{i}" for i in (1, 2, 3)]
    author_c = await clients(srv.url, headers={"X-Forwarded-For": "198.51.100.9"})
    author = await author_c.join(created.link)
    reporters = []
    for address in seats:
        c = await clients(srv.url, headers={"X-Forwarded-For": address})
        reporters.append(await c.join(created.link))
    await knows(author, *reporters)
    await author.send("an ordinary message")
    received = [await text_of(r) for r in reporters]
    for reporter, msg in zip(reporters, received, strict=True):
        ack = await reporter.report(msg, "harassment")
        assert ack["hidden"] is False, ack


async def test_reports_verified_routed_and_hidden_at_three(
    srv: RunningServer, clients: Any
) -> None:
    _, host, created = await session(srv, clients)
    names = ["Ash", "Birch", "Cedar", "Dune"]
    members = [
        await admitted_member(srv, clients, host, created.link, n, f"198.51.100.{i + 1}")
        for i, n in enumerate(names)
    ]
    sender, reporters = members[0], members[1:]
    await knows(sender, host, *reporters)
    await sender.send("a harmful message")
    received = [await text_of(r) for r in reporters]
    assert (await text_of(host)).text == "a harmful message"
    # Forgeries: changed text, and another message's stamp.
    msg = received[0]
    assert msg.evidence is not None
    forged_text = replace(msg, evidence=replace(msg.evidence, body=msg.evidence.body[:-3] + b'x"}'))
    await refused("bad_report", reporters[0].report(forged_text, "harassment"))
    await sender.send("an innocent one")
    other = await text_of(reporters[0])
    assert other.evidence is not None
    swapped = replace(msg, evidence=replace(msg.evidence, stamp=other.evidence.stamp))
    await refused("bad_report", reporters[0].report(swapped, "harassment"))
    await refused("unknown_reason", reporters[0].report(msg, "not on the list"))
    # Three distinct members report it: the host receives verified text; then it is hidden.
    for i, (reporter, m) in enumerate(zip(reporters, received, strict=True)):
        ack = await reporter.report(m, "harassment")
        report = await next_event(host, ReportReceived)
        assert report.text == "a harmful message"
        assert report.sender_id == sender.member_id and report.sender_pseudonym == "Ash"
        assert report.reporters == i + 1 and ack["hidden"] == (i == 2)
    again = await reporters[0].report(received[0], "harassment")  # counted once per member
    assert again["reporters"] == 3
    hidden = await next_event(sender, MessageHidden)
    assert hidden.hidden
    # The host reviews and restores it.
    await host.review(hidden.digest, hide=False)
    assert not (await next_event(sender, MessageHidden)).hidden


# --- Q&A ----------------------------------------------------------------------------------


async def test_qa_questions_reach_only_hosts(srv: RunningServer, clients: Any) -> None:
    _, host, created = await session(srv, clients, qa=True)
    asker = await admitted_member(srv, clients, host, created.link, "Ash")
    other = await admitted_member(srv, clients, host, created.link, "Birch")
    await refused("qa_only", asker.send("can I post?"))
    # Record every question push the other member's connection receives.
    raw_pushes: list[Any] = []
    handlers = other.client._sio.handlers["/"]
    inner = handlers["qa.question"]

    def spy(data: Any = None) -> Any:
        raw_pushes.append(data)
        return inner(data)

    handlers["qa.question"] = spy
    assert await asker.ask("How do I cope with panic at night?", consent=False) == 1
    question = await next_event(host, Question)
    assert question.text == "How do I cope with panic at night?" and not question.consent
    await host.answer(question, "Slow breathing helps; here is how.")
    answer_a, answer_b = await text_of(asker), await text_of(other)
    assert answer_a.text == answer_b.text == "Slow breathing helps; here is how."
    assert answer_b.body["quote"] == {"text": "How do I cope with panic at night?"}
    assert raw_pushes == []  # the other member never received the question


# --- the end ------------------------------------------------------------------------------


async def test_end_session_tells_everyone_and_forgets_the_room(
    srv: RunningServer, clients: Any
) -> None:
    _, host, created = await session(srv, clients)
    a = await admitted_member(srv, clients, host, created.link, "Ash")
    w_c = await clients(srv.url)
    waiting = await w_c.knock(created.link)
    await a.send("bye")
    await text_of(host)
    await host.end()
    ended = await next_event(a, RoomEnded, timeout=1.0)
    assert ended.reason == "ended_by_host"
    assert not await asyncio.wait_for(waiting.admitted(), 1.0)
    assert waiting.declined_reason == "ended"
    assert await srv.node.store.load(created.room_id) is None
    assert await srv.node.bus.since(created.room_id, 0) in (None, [])
