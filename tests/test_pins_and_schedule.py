"""Pinned messages and resource lists, a session's own end and its extension, and readmission of
members a host admitted, against real nodes (memory and Redis) and real clients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from chatserver.client import (
    DecryptFailed,
    LobbyUpdate,
    MemberJoined,
    MemberLeft,
    Message,
    PinChanged,
    PinRemoved,
    Room,
    RoomEnded,
    RoomUpdated,
)
from chatserver.pins import Link
from tests.conftest import RunningServer, ServerFactory
from tests.test_moderation import FAST, admitted_member, next_event, refused, session, srv

__all__ = ["srv"]  # the fixture, shared with the moderation tests


@pytest.fixture
async def slow_clock_srv(make_server: ServerFactory, tmp_path: Path) -> RunningServer:
    """A node whose seats never lapse, for tests that move its clock forward by an hour: the
    sweeper may read the new time between its heartbeat and its lapsed-seat check."""
    return await make_server(key_file=str(tmp_path / "server.key"), presence_ttl_s=1e7, **FAST)


RESOURCES = [("Samaritans", "https://www.samaritans.org"), ("Mind", "https://www.mind.org.uk")]


def drained(room: Room) -> list[Any]:
    """Events already queued for the UI, without waiting."""
    out = []
    while not room._queue.empty():
        out.append(room._queue.get_nowait())
    return out


async def test_a_pin_reaches_members_and_later_joiners(srv: RunningServer, clients: Any) -> None:
    _, host, created = await session(srv, clients)
    early = await admitted_member(srv, clients, host, created.link, "Ash")
    await host.pin("Our ground rules and where to find help.", links=RESOURCES)
    got = await next_event(early, PinChanged)
    assert got.pinned.text == "Our ground rules and where to find help."
    assert got.pinned.links == tuple(Link(*pair) for pair in RESOURCES)
    assert got.sender_id == host.member_id and not got.resent
    # A later joiner cannot open the stored envelope (its chain index is past); the host's client
    # re-sends the same pin under the current keys, and the joiner reads it.
    late = await admitted_member(srv, clients, host, created.link, "Birch")
    again = await next_event(late, PinChanged, timeout=8)
    assert again.pinned.pin_id == got.pinned.pin_id and again.pinned.links == got.pinned.links
    assert late.pinned is not None and late.pinned.text == got.pinned.text
    # The members already there see the same pin again, marked as a re-send, not a new message.
    resent = await next_event(early, PinChanged)
    assert resent.resent and resent.pinned.pin_id == got.pinned.pin_id
    await asyncio.sleep(0.2)
    leftovers = drained(early) + drained(late)
    assert not [e for e in leftovers if isinstance(e, Message | DecryptFailed)], leftovers


async def test_members_cannot_pin_and_unpinning_reaches_everyone(
    srv: RunningServer, clients: Any
) -> None:
    _, host, created = await session(srv, clients)
    member = await admitted_member(srv, clients, host, created.link, "Ash")
    await refused("forbidden", member.pin("I am in charge now"))
    await host.pin("Be kind.")
    await next_event(member, PinChanged)
    kept = await srv.node.store.load(created.room_id)
    assert kept is not None and kept.room.pinned is not None  # what later joiners receive
    await refused("forbidden", member.unpin())
    await host.unpin()
    removed = await next_event(member, PinRemoved)
    assert removed.by == host.member_id and member.pinned is None
    cleared = await srv.node.store.load(created.room_id)
    assert cleared is not None and cleared.room.pinned is None  # later joiners get no pin


async def test_moderators_pin_in_peer_rooms(srv: RunningServer, clients: Any) -> None:
    creator_c, mod_c, member_c = [await clients(srv.url) for _ in range(3)]
    created = await creator_c.create_room()
    assert created.host_link is not None
    creator = await creator_c.join(created.host_link)
    mod = await mod_c.join(created.link)
    member = await member_c.join(created.link)
    await creator.set_role(mod.member_id, "moderator")
    await next_event(mod, MemberJoined)
    await mod.pin("Peer support, not therapy: in a crisis call your local helpline.")
    pinned = await next_event(member, PinChanged)
    assert pinned.pinned.text.startswith("Peer support") and pinned.sender_id == mod.member_id


async def test_links_must_be_https() -> None:
    from chatserver.pins import check_links, read_pin

    with pytest.raises(ValueError, match="https"):
        check_links([("evil", "javascript:alert(1)")])
    with pytest.raises(ValueError, match="https"):
        check_links([("plain", "http://example.org")])
    body = {
        "pin_id": "p1",
        "links": [
            {"label": "ok", "url": "https://example.org/help"},
            {"label": "script", "url": "javascript:alert(1)"},
            {"label": "data", "url": "data:text/html,<b>x</b>"},
            "not a link",
        ],
    }
    pinned = read_pin(body, "text", "sender", 3)
    assert pinned is not None and pinned.links == (Link("ok", "https://example.org/help"),)
    assert read_pin({"text": "no id"}, "no id", "sender", 3) is None


# --- a session's own end ------------------------------------------------------------------


async def test_a_session_ends_by_itself_after_its_time(
    slow_clock_srv: RunningServer, clients: Any
) -> None:
    srv = slow_clock_srv
    _, host, created = await session(srv, clients, duration_s=1800)
    member = await admitted_member(srv, clients, host, created.link, "Ash")
    assert member.ends_at == pytest.approx(
        srv.clock.now() + 1800 + srv.node.policy.session_overrun_s, abs=10
    )
    waiter_c = await clients(srv.url)
    waiting = await waiter_c.knock(created.link, "Cedar", accept_rules=True)
    await next_event(host, LobbyUpdate)
    srv.clock.advance(1800 + srv.node.policy.session_overrun_s)
    for room in (host, member):
        ended = await next_event(room, RoomEnded, timeout=3)
        assert ended.reason == "time_up"
    assert not await asyncio.wait_for(waiting.admitted(), 3)
    assert waiting.declined_reason == "ended"
    assert await srv.node.store.load(created.room_id) is None


async def test_hosts_extend_a_session(slow_clock_srv: RunningServer, clients: Any) -> None:
    srv = slow_clock_srv
    _, host, created = await session(srv, clients, duration_s=1800)
    member = await admitted_member(srv, clients, host, created.link, "Ash")
    before = member.ends_at
    assert before is not None
    await host.settings(duration_s=2700)
    await next_event(member, RoomUpdated)
    assert member.duration_s == 2700 and member.ends_at == pytest.approx(before + 900)
    await refused("forbidden", member.settings(duration_s=3600))
    srv.clock.advance(1800 + srv.node.policy.session_overrun_s + 5)  # the old end has passed
    await asyncio.sleep(0.3)
    await member.send("still here")
    assert (await next_event(host, Message)).text == "still here"


# --- readmission --------------------------------------------------------------------------


async def test_an_admitted_member_comes_back_without_queueing(
    srv: RunningServer, clients: Any
) -> None:
    _, host, created = await session(srv, clients)
    c = await clients(srv.url)
    waiting = await c.knock(created.link, "Ash", accept_rules=True)
    update = await next_event(host, LobbyUpdate)
    await host.admit(waiting.member_id, update.card)
    assert await waiting.admitted()
    first = await waiting.enter()
    await next_event(host, MemberJoined)
    await first.leave()  # a reloaded page, a phone that dropped the connection
    await next_event(host, MemberLeft)
    await host.settings(locked=True)  # a lock keeps newcomers out, not people admitted before
    back = await waiting.enter()
    joined = await next_event(host, MemberJoined)
    assert joined.member_id == waiting.member_id and back.pseudonym == first.pseudonym
    await back.send("back again")
    assert (await next_event(host, Message)).text == "back again"
    # Removal forfeits it: the same card must knock again.
    await host.remove(back.member_id)
    await next_event(host, MemberLeft)
    await refused("lobby_required", waiting.enter())
