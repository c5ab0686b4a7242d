"""The console's session controls in a real Chromium against a real node, with the Python client
as the other party: ground rules (sealed for private rooms, accepted before entering, edited live),
Q&A mode, member actions (mute for a while, remove with a ban, roles), messages hidden after
reports, and listed sessions in the directory with the host's verified name."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatserver import e2ee
from chatserver.client import (
    ChatClient,
    ChatError,
    Message,
    PinChanged,
    PinRemoved,
    Question,
    Room,
    RoomEvent,
    SessionUpdated,
)
from chatserver.links import parse_link

from .conftest import ServerThread, issue
from .test_web import axe, create_private_room, join, messages, no_horizontal_scroll, say, tab

RULES = "Be kind.\nWhat is said here stays here."


def console_session(
    page: Any,
    server: ServerThread,
    *,
    rules: str = "",
    lobby: bool = True,
    topic: str = "",
    enter: bool = True,
    duration_min: int = 0,
) -> str:
    """Sign in, create a session with the console's form, enter as host; the participants' link."""
    page.goto(server.url + "/")
    page.get_by_role("link", name="Therapist sign-in").click()
    page.get_by_label("Your credential").fill(issue(server))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for()
    if topic:
        page.get_by_label("List in the directory").check()
        page.get_by_label("Topic in the directory").fill(topic)
    else:
        page.get_by_label("Title", exact=True).fill("Thursday group")
    if not lobby:
        page.get_by_label("Waiting room: I admit each person").uncheck()
    if rules:
        page.get_by_label("Ground rules (optional)").fill(rules)
    if duration_min:
        page.get_by_label("Duration in minutes (optional)").fill(str(duration_min))
    page.get_by_role("button", name="Create session").click()
    link: str = page.get_by_label("Link for participants").input_value()
    if enter:
        page.get_by_role("button", name="Open the session as host").click()
        page.get_by_role("toolbar", name="Host controls").wait_for()
    return link


async def until(room: Room, match: Callable[[RoomEvent], bool], timeout: float = 10) -> RoomEvent:
    """The first event of the room that matches (the others are skipped)."""

    async def first() -> RoomEvent:
        async for ev in room.events():
            if match(ev):
                return ev
        raise AssertionError("room closed")

    return await asyncio.wait_for(first(), timeout)


async def python_member(url: str, link: str, name: str) -> tuple[ChatClient, Room]:
    client = ChatClient(url)
    await client.connect()
    return client, await client.join(link, nickname=name)


def eventually(check: Callable[[], bool], timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def admitted_member(
    server: ServerThread, host: Any, link: str, name: str
) -> tuple[ChatClient, Room]:
    """A Python participant who knocks and is admitted from the browser host's lobby queue."""
    client = ChatClient(server.url)
    server.run(client.connect())
    waiting = server.run(client.knock(link, name))
    host.get_by_role("button", name=f"Admit {name}").click()
    assert server.run(waiting.admitted())
    return client, server.run(waiting.enter())


def refused(server: ServerThread, coro: Any) -> str:
    with pytest.raises(ChatError) as info:
        server.run(coro)
    return info.value.code


def test_ground_rules_are_sealed_accepted_before_entering_and_updated_live(
    browser: Any, keyed_node: ServerThread
) -> None:
    server = keyed_node
    sam, other = ChatClient(server.url), ChatClient(server.url)
    server.run(sam.connect())
    server.run(other.connect())
    try:
        with tab(browser) as host_tab, tab(browser) as guest_tab:
            host, guest = host_tab.page, guest_tab.page
            link = console_session(host, server, rules=RULES)
            secret = parse_link(link).secret
            assert secret is not None
            # The rules are a meta blob under the link's key: the Python client opens them.
            assert refused(server, other.knock(link, "Kim")) == "rules_not_accepted"
            waiting = server.run(sam.knock(link, "Sam", accept_rules=True))
            rules_blob = waiting.info["rules"]
            assert RULES.encode() not in rules_blob
            assert e2ee.open_meta(secret.meta_key, secret.room_id, rules_blob) == RULES

            guest.goto(link)
            guest.get_by_label("Your name here (optional)").fill("Ana")
            guest.get_by_role("button", name="Join the room").click()
            # The server answers with the rules: read, tick, and only then knock.
            guest.get_by_text("What is said here stays here.").wait_for()
            guest.get_by_role("button", name="Accept and join").click()
            guest.get_by_text("tick “I accept these ground rules” to enter").wait_for()
            assert host.get_by_role("button", name="Admit Ana").count() == 0  # no knock yet
            guest.get_by_label("I accept these ground rules").check()
            guest.get_by_role("button", name="Accept and join").click()
            guest.get_by_text("You are in the waiting room").wait_for()
            guest.locator(".rules-text", has_text="Be kind.").wait_for()
            assert guest.get_by_role("log", name="Messages").count() == 0
            host.get_by_role("button", name="Admit Ana").click()
            guest.get_by_role("log", name="Messages").wait_for()
            guest.locator(".rules-text", has_text="Be kind.").wait_for()
            assert guest.get_by_label("Message", exact=True).is_enabled()

            host.get_by_role("button", name="Admit Sam").click()
            assert server.run(waiting.admitted())
            room = server.run(waiting.enter())

            host.get_by_role("button", name="Edit ground rules").click()
            editor = host.get_by_role("textbox", name="Ground rules")
            assert editor.input_value() == RULES
            editor.fill("Be kind. No advice unless asked.")
            host.get_by_role("button", name="Save ground rules").click()
            guest.locator(".rules-text", has_text="No advice unless asked.").wait_for()
            guest.get_by_text("The ground rules were updated.").wait_for()
            ev = server.run(until(room, lambda e: isinstance(e, SessionUpdated)))
            assert isinstance(ev, SessionUpdated) and ev.rules is not None
            text = e2ee.open_meta(secret.meta_key, secret.room_id, ev.rules)
            assert text == "Be kind. No advice unless asked."

            # Empty rules remove them.
            host.get_by_role("button", name="Edit ground rules").click()
            host.get_by_role("textbox", name="Ground rules").fill("")
            host.get_by_role("button", name="Save ground rules").click()
            guest.get_by_text("The ground rules were removed.").wait_for()
            assert guest.locator(".rules-text").count() == 0
            assert host_tab.errors == [] and guest_tab.errors == []
    finally:
        server.run(sam.close(leave=False))
        server.run(other.close(leave=False))


@contextlib.contextmanager
def python_host(server: ServerThread, **options: Any) -> Iterator[tuple[Any, Any]]:
    """A signed-in Python therapist hosting a session (`create_session(**options)`): yields the
    created session and the host's room, and disconnects at the end."""
    host = ChatClient(server.url)
    server.run(host.connect())
    try:
        server.run(host.sign_in(issue(server)))
        created = server.run(host.create_session(**options))
        assert created.host_link is not None
        yield created, server.run(host.join(created.host_link))
    finally:
        server.run(host.close(leave=False))


def join_accepting_rules(
    page: Any, link: str, name: str, before: Callable[[], Any] | None = None
) -> None:
    """Join a room with ground rules: the join form shows them after the server's refusal, the
    person ticks, and only then enters. `before` (optional) is read while the rules are shown."""
    page.goto(link)
    page.get_by_label("Your name here (optional)").fill(name)
    page.get_by_role("button", name="Join the room").click()
    page.locator(".rules-text", has_text="What is said here stays here.").wait_for()
    if before is not None:
        assert len(before()) == 1  # only the host: nobody is in before accepting
    page.get_by_label("I accept these ground rules").check()
    page.get_by_role("button", name="Accept and join").click()
    page.get_by_role("log", name="Messages").wait_for()


def test_rules_of_a_session_without_lobby_are_accepted_before_joining(
    browser: Any, keyed_node: ServerThread
) -> None:
    """Without a lobby the join is refused with the rules: the person reads, ticks, and joins."""
    server = keyed_node
    with python_host(server, lobby=False, rules=RULES) as (created, host_room), tab(browser) as t:
        page = t.page
        join_accepting_rules(page, str(created.link), "Ana", before=lambda: host_room.members)
        assert page.get_by_label("Message", exact=True).is_enabled()
        say(page, "hello after the rules")
        got = server.run(until(host_room, lambda e: isinstance(e, Message) and not e.own))
        assert isinstance(got, Message) and got.text == "hello after the rules"
        assert t.errors == []


def test_qa_mode_questions_reach_hosts_only_and_answers_quote_them(
    browser: Any, keyed_node: ServerThread
) -> None:
    server = keyed_node
    with tab(browser) as host_tab, tab(browser) as guest_tab:
        host, guest = host_tab.page, guest_tab.page
        link = console_session(host, server, lobby=False)
        join(guest, link, "Ana")
        sam, sam_room = server.run(python_member(server.url, link, "Sam"))
        try:
            host.locator(".member-actions [data-member]", has_text="Sam").wait_for()
            qa = host.get_by_role("button", name="Q&A mode")
            assert qa.get_attribute("aria-pressed") == "false"
            qa.click()
            host.get_by_role("button", name="Q&A mode", pressed=True).wait_for()

            guest.get_by_role("heading", name="Ask the host a question").wait_for()
            guest.get_by_text("only the hosts can post right now").wait_for()
            assert not guest.get_by_label("Message", exact=True).is_visible()
            server.run(until(sam_room, lambda e: isinstance(e, SessionUpdated) and e.qa))
            assert refused(server, sam_room.send("may I talk?")) == "qa_only"

            # Ana asks and agrees to be named.
            guest.get_by_label("Your question").fill("How do I sleep better?")
            guest.get_by_label("Show my name with my question if it is answered").check()
            guest.get_by_role("button", name="Send question").click()
            guest.get_by_text("Your question was sent to the host.").wait_for()
            host.get_by_text("How do I sleep better?").wait_for()
            host.get_by_label("Your answer to Ana").fill("Keep a regular bedtime.")
            host.get_by_role("button", name="Answer publicly").click()
            answer = guest.locator(".msg", has_text="Keep a regular bedtime.")
            answer.locator(".quote", has_text="Ana asked:").wait_for()
            answer.locator(".quote", has_text="How do I sleep better?").wait_for()
            got = server.run(until(sam_room, lambda e: isinstance(e, Message) and not e.own))
            assert isinstance(got, Message) and got.text == "Keep a regular bedtime."
            assert got.body["quote"] == {"text": "How do I sleep better?", "asker": "Ana"}

            # Sam asks from Python without consent: the answer quotes the question, unnamed.
            assert server.run(sam_room.ask("Is it normal to feel numb?")) == 1
            host.get_by_text("Is it normal to feel numb?").wait_for()
            host.get_by_text("From Sam (will not be named)").wait_for()
            host.get_by_label("Your answer to Sam").fill("Yes, it happens to many.")
            host.get_by_role("button", name="Answer publicly").click()
            got = server.run(until(sam_room, lambda e: isinstance(e, Message) and not e.own))
            assert isinstance(got, Message)
            assert got.body["quote"] == {"text": "Is it normal to feel numb?"}
            unnamed = guest.locator(".msg", has_text="Yes, it happens to many.")
            unnamed.locator(".quote", has_text="A question:").wait_for()
            assert "Sam" not in unnamed.inner_text()

            host.get_by_role("button", name="Q&A mode").click()
            guest.get_by_text("Q&A mode is off").wait_for()
            assert guest.get_by_label("Message", exact=True).is_visible()
            assert host_tab.errors == [] and guest_tab.errors == []
        finally:
            server.run(sam.close(leave=False))


def test_questions_from_python_open_in_the_browser_host_only(
    browser: Any, keyed_node: ServerThread
) -> None:
    """A Python host gets the browser's sealed question and answers; Python decides the format."""
    server = keyed_node
    with python_host(server, lobby=False, qa=True) as (created, host_room), tab(browser) as t:
        page = t.page
        join(page, str(created.link), "Ana")
        page.get_by_label("Your question").fill("What if I cry?")
        page.get_by_role("button", name="Send question").click()
        q = server.run(until(host_room, lambda e: isinstance(e, Question)))
        assert isinstance(q, Question)
        assert (q.text, q.consent, q.pseudonym) == ("What if I cry?", False, "Ana")
        server.run(host_room.answer(q, "That is welcome here."))
        msg = page.locator(".msg", has_text="That is welcome here.")
        msg.locator(".quote", has_text="What if I cry?").wait_for()
        assert "Ana" not in msg.inner_text()
        assert t.errors == []


def test_member_actions_mute_roles_remove_and_ban(browser: Any, keyed_node: ServerThread) -> None:
    server = keyed_node
    with tab(browser) as host_tab, tab(browser, width=360, height=740) as guest_tab:
        host, guest = host_tab.page, guest_tab.page
        link = console_session(host, server, lobby=False)
        join(guest, link, "Ana")
        sam, sam_room = server.run(python_member(server.url, link, "Sam"))
        kim, kim_room = server.run(python_member(server.url, link, "Kim"))
        try:
            rows = host.locator(".member-actions")
            rows.locator("[data-member]", has_text="Kim").wait_for()

            # Ana: muted until unmuted; she is told.
            host.get_by_label("Mute Ana for").select_option(label="Until unmuted")
            host.get_by_role("button", name="Mute Ana", exact=True).click()
            rows.locator("[data-member]", has_text="Ana").locator(".muted-tag").wait_for()
            guest.get_by_text("You are muted.").wait_for()

            # Sam: for five minutes; the server refuses what he sends.
            host.get_by_label("Mute Sam for").select_option(label="5 minutes")
            host.get_by_role("button", name="Mute Sam", exact=True).click()
            sam_row = rows.locator("[data-member]", has_text="Sam")
            sam_row.locator(
                ".muted-tag", has_text=re.compile(r"muted until \d{1,2}:\d{2}")
            ).wait_for()
            assert refused(server, sam_room.send("hello?")) == "muted"

            host.get_by_role("button", name="Unmute Ana").click()
            guest.get_by_text("You are muted.").wait_for(state="detached")

            # Roles: Ana becomes a moderator and sees only what a moderator may do.
            host.get_by_role("button", name="Make moderator: Ana").click()
            guest.get_by_role("button", name="About this room").click()
            guest.get_by_role("heading", name="Host tools").wait_for()
            guest.get_by_role("button", name="Mute Sam", exact=True).wait_for()
            host.get_by_role("button", name="Make co-host: Kim").click()
            rows.locator("[data-member]", has_text="Kim").locator(
                ".tag", has_text="co-host"
            ).wait_for()
            guest.locator(".member-actions [data-member]", has_text="Kim").get_by_text(
                "host"
            ).wait_for()
            for hidden in ("Mute Kim", "Remove Kim", "Make moderator: Sam"):
                assert guest.get_by_role("button", name=hidden, exact=True).count() == 0
            assert eventually(lambda: kim_room.role == "host")
            host.get_by_role("button", name="Back to member: Kim").click()
            rows.locator("[data-member]", has_text="Kim").locator(
                ".tag", has_text="co-host"
            ).wait_for(state="detached")

            # Remove Sam with a ban: he is out and cannot come back.
            host.get_by_role("button", name="Remove Sam").click()
            # A member update while the confirmation is open leaves it open.
            server.run(kim_room.rename("Kimberly"))
            rows.locator("[data-member]", has_text="Kimberly").wait_for()
            assert host.get_by_label("and ban from this room").is_visible()
            host.get_by_label("and ban from this room").check()
            host.get_by_role("button", name="Yes, remove Sam").click()
            sam_row.wait_for(state="detached")
            host.get_by_text("Sam was removed and banned from this room.").wait_for()
            # The conversation says what happened, never that Sam "left".
            host.get_by_text("Sam was removed by a host.").wait_for()
            guest.get_by_text("Sam was removed by a host.").wait_for()
            assert host.get_by_text("Sam left.").count() == 0
            assert eventually(lambda: sam_room.closed)
            assert refused(server, sam.join(link, nickname="Sam2")) == "banned"
            assert host_tab.errors == [] and guest_tab.errors == []
        finally:
            server.run(sam.close(leave=False))
            server.run(kim.close(leave=False))


def test_hidden_message_collapses_and_can_be_shown_by_keyboard(
    browser: Any, keyed_node: ServerThread
) -> None:
    server = keyed_node
    with python_host(server, lobby=False) as (created, host_room), tab(browser) as t:
        page = t.page
        join(page, str(created.link), "Ana")
        kim, kim_room = server.run(python_member(server.url, str(created.link), "Kim"))
        try:
            page.locator(".people li", has_text="Kim").wait_for()
            server.run(kim_room.send("something unkind"))
            messages(page, "something unkind").wait_for()
            got = server.run(until(host_room, lambda e: isinstance(e, Message) and not e.own))
            assert isinstance(got, Message) and got.evidence is not None
            digest = hashlib.sha256(got.evidence.env).digest()

            server.run(host_room.review(digest, hide=True))
            page.get_by_text("Hidden after reports, pending review").wait_for()
            assert not messages(page, "something unkind").is_visible()
            show = page.get_by_role("button", name="Show anyway")
            show.focus()
            page.keyboard.press("Enter")
            messages(page, "something unkind").wait_for(state="visible")

            server.run(host_room.review(digest, hide=True))  # idempotent, no push
            server.run(host_room.review(digest, hide=False))
            page.get_by_text("Hidden after reports, pending review").wait_for(state="detached")
            assert messages(page, "something unkind").is_visible()
            assert t.errors == []
        finally:
            server.run(kim.close(leave=False))


def test_directory_shows_listed_sessions_with_start_time_and_verified_host(
    browser: Any, keyed_node: ServerThread
) -> None:
    server = keyed_node
    peer = ChatClient(server.url)
    server.run(peer.connect())
    try:
        peer_room = server.run(peer.create_room(listed=True, topic="evening peer chat"))
        server.run(peer.join(peer_room.link))  # the directory lists rooms someone is in
        with tab(browser) as host_tab, tab(browser, width=360, height=740) as visitor_tab:
            link = console_session(host_tab.page, server, topic="grief circle", enter=False)
            assert re.fullmatch(re.escape(server.url) + r"/r/[A-Za-z0-9_-]{22}", link), link
            host_tab.page.get_by_role("button", name="Open the session as host").click()
            host_tab.page.get_by_role("toolbar", name="Host controls").wait_for()
            page = visitor_tab.page
            page.goto(server.url + "/")
            card = page.locator(".room-card", has_text="grief circle")
            card.get_by_text("With Dr. A. Rao (verified therapist)").wait_for()
            card.get_by_text(re.compile(r"Started \w+")).wait_for()
            peer_card = page.locator(".room-card", has_text="evening peer chat")
            peer_card.wait_for()
            assert peer_card.locator(".verified").count() == 0
            listed = server.run(peer.list_rooms("grief"))
            assert listed[0]["badge"] and listed[0]["host_id"]
            assert host_tab.errors == [] and visitor_tab.errors == []
    finally:
        server.run(peer.close(leave=False))


# --- part 2: pins, session end, reload ------------------------------------------------------


async def next_pin(room: Room, timeout: float = 10) -> PinChanged:
    ev = await until(room, lambda e: isinstance(e, PinChanged), timeout)
    assert isinstance(ev, PinChanged)
    return ev


def test_pinned_resources_reach_later_joiners_by_re_send_and_unpin(
    browser: Any, keyed_node: ServerThread
) -> None:
    server = keyed_node
    with tab(browser) as host_tab, tab(browser, width=360, height=740) as guest_tab:
        host, guest = host_tab.page, guest_tab.page
        link = console_session(host, server, lobby=False)
        sam, sam_room = server.run(python_member(server.url, link, "Sam"))
        try:
            host.locator(".member-actions [data-member]", has_text="Sam").wait_for()
            host.get_by_role("button", name="Pin resources").click()
            host.get_by_label("Heading").fill("Support lines")
            host.get_by_label("Label 1").fill("Samaritans")
            host.get_by_label("Address 1").fill("javascript:alert(1)")
            host.get_by_role("button", name="Pin the list").click()
            host.get_by_text(
                "Each link needs a label and an address starting with https://."
            ).wait_for()
            host.get_by_label("Address 1").fill("https://www.samaritans.org/")
            host.get_by_role("button", name="Add a link").click()
            host.get_by_label("Label 2").fill("Crisis text line")
            host.get_by_label("Address 2").fill("https://www.crisistextline.org/")
            host.get_by_role("button", name="Pin the list").click()
            host.locator(".pinned", has_text="Support lines").wait_for()
            host.get_by_text("You pinned a message.").wait_for()

            got = server.run(next_pin(sam_room))
            assert got.pinned.text == "Support lines" and not got.resent
            assert [(li.label, li.url) for li in got.pinned.links] == [
                ("Samaritans", "https://www.samaritans.org/"),
                ("Crisis text line", "https://www.crisistextline.org/"),
            ]
            pin_id = got.pinned.pin_id
            assert re.fullmatch(r"[A-Za-z0-9_-]{16}", pin_id)

            # A later joiner cannot open the stored pin; the host's client re-sends it.
            join(guest, link, "Ana")
            panel = guest.locator(".pinned")
            anchor = panel.get_by_role("link", name="Samaritans")
            anchor.wait_for()
            assert anchor.get_attribute("href") == "https://www.samaritans.org/"
            assert anchor.get_attribute("rel") == "noopener noreferrer"
            assert anchor.get_attribute("target") == "_blank"
            again = server.run(next_pin(sam_room))
            assert again.resent and again.pinned.pin_id == pin_id
            # The re-send is not a new message for those who already had it.
            assert host.get_by_text("pinned a message").count() == 1
            assert guest.locator(".msg").count() == 0

            host.get_by_role("button", name="Unpin the pinned message").click()
            panel.wait_for(state="hidden")
            removed = server.run(until(sam_room, lambda e: isinstance(e, PinRemoved)))
            assert isinstance(removed, PinRemoved)
            guest.get_by_text("unpinned the pinned message").wait_for()
            assert host_tab.errors == [] and guest_tab.errors == []
        finally:
            server.run(sam.close(leave=False))


def test_python_pin_renders_https_links_only_and_staff_take_over_the_re_send(
    browser: Any, keyed_node: ServerThread
) -> None:
    """A Python co-host pins (an http link among them: shown as text, not a link). Once the pinner
    has left, the first staff member in join order (the browser host) re-sends it for a joiner."""
    server = keyed_node
    with tab(browser) as t:
        page = t.page
        link = console_session(page, server, lobby=False)
        pinner, pinner_room = server.run(python_member(server.url, link, "Pat"))
        late = ChatClient(server.url)
        server.run(late.connect())
        try:
            page.get_by_role("button", name="Make co-host: Pat").click()
            assert eventually(lambda: pinner_room.role == "host")
            links = [
                {"label": "Safe", "url": "https://example.org/help"},
                {"label": "Plain", "url": "http://example.org/plain"},
            ]
            server.run(pinner_room.send("Read me", pin=True, pin_id="p" * 16, links=links))
            panel = page.locator(".pinned")
            panel.get_by_role("link", name="Safe").wait_for()
            assert panel.get_by_role("link", name="Plain").count() == 0
            panel.get_by_text("Plain (http://example.org/plain)").wait_for()
            page.get_by_text("Pat pinned a message.").wait_for()

            server.run(pinner_room.leave())  # the pinner is gone: the host takes the duty over
            page.get_by_text("Pat left.").wait_for()
            late_room = server.run(late.join(link, nickname="Kim"))
            got = server.run(next_pin(late_room, timeout=15))
            assert got.pinned.text == "Read me" and got.pinned.pin_id == "p" * 16
            host_id = next(mid for mid, m in late_room.members.items() if m.role == "host")
            assert got.sender_id == host_id
            assert [li.url for li in got.pinned.links] == ["https://example.org/help"]
            assert t.errors == []
        finally:
            server.run(pinner.close(leave=False))
            server.run(late.close(leave=False))


def test_session_end_time_extend_and_time_up(browser: Any, web_dist: Path, tmp_path: Path) -> None:
    server = ServerThread(key_file=str(tmp_path / "server.key"), session_overrun_s=1.0).start()
    with python_host(server, lobby=False, duration_s=600) as (created, host_room):
        assert host_room.ends_at is not None
        with tab(browser) as t:
            page = t.page
            join(page, str(created.link), "Ana")
            page.get_by_text("Time left:").wait_for()
            ends = page.get_by_text(re.compile(r"Ends automatically at \d{1,2}:\d{2}"))
            ends.wait_for()
            # The host (Python) extends: the browser's timer follows the room.updated push.
            server.run(host_room.settings(duration_s=10.0))
            page.get_by_text(re.compile(r"Time left: 0:0\d")).wait_for()
            page.get_by_role("heading", name="The session reached its end time.").wait_for(
                timeout=20000
            )
            assert page.evaluate("Object.keys(sessionStorage).join()") == ""
            assert t.errors == []
    server.stop()


def test_host_extends_the_session_by_fifteen_minutes(
    browser: Any, keyed_node: ServerThread
) -> None:
    server = keyed_node
    with tab(browser) as t:
        page = t.page
        link = console_session(page, server, lobby=False, duration_min=30)
        sam, sam_room = server.run(python_member(server.url, link, "Sam"))
        try:
            first = page.get_by_text(re.compile(r"Ends automatically at")).inner_text()
            assert sam_room.duration_s == 1800
            page.get_by_role("button", name="Extend 15 min").click()
            assert eventually(lambda: sam_room.duration_s == 2700)
            assert sam_room.ends_at is not None
            page.get_by_text(re.compile(r"Time left: (44|45):")).wait_for()
            assert page.get_by_text(re.compile(r"Ends automatically at")).inner_text() != first
            assert t.errors == []
        finally:
            server.run(sam.close(leave=False))


def test_reload_takes_the_same_seat_back_in_a_lobby_session_and_leave_forgets_it(
    browser: Any, keyed_node: ServerThread
) -> None:
    server = keyed_node
    with tab(browser) as host_tab, tab(browser) as guest_tab:
        host, guest = host_tab.page, guest_tab.page
        link = console_session(host, server)
        sam, sam_room = admitted_member(server, host, link, "Sam")
        try:
            guest.goto(link)
            guest.get_by_label("Your name here (optional)").fill("Ana")
            guest.get_by_role("button", name="Join the room").click()
            guest.get_by_text("You are in the waiting room").wait_for()
            host.get_by_role("button", name="Admit Ana").click()
            guest.get_by_text("You joined as Ana").wait_for()
            ana_id = next(mid for mid, m in sam_room.members.items() if m.pseudonym == "Ana")
            stored = guest.evaluate("Object.keys(sessionStorage)")
            assert any(k.startswith("chatserver.seat.") for k in stored), stored

            # Reload within the resume grace: the same identity and card, no knocking.
            guest.reload()
            guest.get_by_text("You joined as Ana").wait_for()
            assert guest.get_by_text("You are in the waiting room").count() == 0
            assert host.get_by_role("button", name="Admit Ana").count() == 0
            assert eventually(lambda: ana_id in sam_room.members)
            say(guest, "back after a reload")
            got = server.run(until(sam_room, lambda e: isinstance(e, Message) and not e.own))
            assert isinstance(got, Message) and got.text == "back after a reload"
            assert got.sender_id == ana_id

            # The host reloads too: the host link stays in this tab, the seat comes back.
            host.reload()
            host.get_by_role("toolbar", name="Host controls").wait_for()
            say(host, "host is back")
            got = server.run(until(sam_room, lambda e: isinstance(e, Message) and not e.own))
            assert isinstance(got, Message) and got.text == "host is back"

            guest.get_by_role("button", name="Leave", exact=True).click()
            assert not any(
                k.startswith("chatserver.seat")
                for k in guest.evaluate("Object.keys(sessionStorage)")
            )
            assert host_tab.errors == [] and guest_tab.errors == []
        finally:
            server.run(sam.close(leave=False))


def test_reload_after_removal_knocks_again(browser: Any, keyed_node: ServerThread) -> None:
    """A removed member's stored card is no longer admitted: the reload lands on the join form."""
    server = keyed_node
    with tab(browser) as host_tab, tab(browser) as guest_tab:
        host, guest = host_tab.page, guest_tab.page
        link = console_session(host, server)
        guest.goto(link)
        guest.get_by_label("Your name here (optional)").fill("Ana")
        guest.get_by_role("button", name="Join the room").click()
        host.get_by_role("button", name="Admit Ana").click()
        guest.get_by_text("You joined as Ana").wait_for()
        saved = guest.evaluate("JSON.stringify(sessionStorage)")
        host.get_by_role("button", name="Remove Ana").click()
        host.get_by_role("button", name="Yes, remove Ana").click()
        guest.get_by_text("The host removed you from this session.").first.wait_for()
        assert not any(
            k.startswith("chatserver.seat") for k in guest.evaluate("Object.keys(sessionStorage)")
        )
        # Even with the old entry put back (a stale tab), the server wants a knock.
        guest.evaluate(
            "(s) => { for (const [k, v] of Object.entries(JSON.parse(s))) sessionStorage.setItem(k, v); }",
            saved,
        )
        guest.goto(server.url + "/r")
        guest.get_by_text("Please knock again: the host needs to let you in.").wait_for()
        guest.get_by_role("button", name="Join the room").click()
        guest.get_by_text("You are in the waiting room").wait_for()
        assert host_tab.errors == [] and guest_tab.errors == []


def test_peer_room_creator_moderates_and_a_reload_keeps_the_seat(
    browser: Any, node: ServerThread
) -> None:
    """The browser's room creator holds the host seat (as Python's create_room does): it sees the
    member actions; a reload inside the resume grace resumes, gives up and retakes the same seat."""
    with tab(browser) as t:
        page = t.page
        link = create_private_room(page, node)
        sam, sam_room = server_member(node, link, "Sam")
        try:
            page.get_by_role("heading", name="Room tools").wait_for()
            page.get_by_label("Mute Sam for").select_option(label="Until unmuted")
            page.get_by_role("button", name="Mute Sam", exact=True).click()
            page.locator(".member-actions [data-member]", has_text="Sam").locator(
                ".muted-tag"
            ).wait_for()
            assert refused(node, sam_room.send("hello?")) == "muted"
            river = next(mid for mid, m in sam_room.members.items() if m.pseudonym == "River")

            page.reload()
            page.get_by_text("You joined as River").wait_for()
            page.get_by_role("button", name="Unmute Sam").click()
            assert eventually(lambda: river in sam_room.members)
            # The host's page shows the unmute once the server applied it: only then may Sam speak.
            page.locator(".member-actions [data-member]", has_text="Sam").locator(
                ".muted-tag"
            ).wait_for(state="detached")
            node.run(sam_room.send("welcome back"))
            messages(page, "welcome back").wait_for()
            say(page, "thanks")
            got = node.run(until(sam_room, lambda e: isinstance(e, Message) and e.text == "thanks"))
            assert isinstance(got, Message) and got.sender_id == river
            assert t.errors == []
        finally:
            node.run(sam.close(leave=False))


def server_member(server: ServerThread, link: str, name: str) -> tuple[ChatClient, Room]:
    return server.run(python_member(server.url, link, name))


def test_new_controls_fit_360px_and_pass_axe(
    browser: Any, keyed_node: ServerThread, artifacts: Path
) -> None:
    """Host and participant screens with rules, a pin, Q&A and the member actions: no serious
    axe violation and no horizontal scroll on a 360px phone."""
    server = keyed_node
    with (
        tab(browser, width=360, height=740, bypass_csp=True) as host_tab,
        tab(browser, width=360, height=740, bypass_csp=True) as guest_tab,
    ):
        host, guest = host_tab.page, guest_tab.page
        link = console_session(host, server, lobby=False, rules=RULES, duration_min=45)
        join_accepting_rules(guest, link, "Ana")
        # On a phone the session's controls wait behind one "Host tools" button.
        host.get_by_role("button", name="Host tools").click()
        host.get_by_role("button", name="Pin a message").click()
        host.get_by_label("Message to pin").fill("Welcome. Take your time.")
        host.get_by_role("button", name="Pin it").click()
        guest.locator(".pinned", has_text="Welcome. Take your time.").wait_for()
        host.get_by_role("button", name="Q&A mode").click()
        guest.get_by_role("heading", name="Ask the host a question").wait_for()
        host.get_by_role("button", name="About this room").click()
        host.get_by_label("Mute Ana for").wait_for()
        for page in (host, guest):
            assert axe(page) == []
            no_horizontal_scroll(page)
        host.screenshot(path=str(artifacts / "console-360x740.png"))
        guest.screenshot(path=str(artifacts / "session-360x740.png"))
        assert host_tab.errors == [] and guest_tab.errors == []


def test_a_pin_the_joiner_cannot_open_waits_for_the_re_send(
    browser: Any, keyed_node: ServerThread
) -> None:
    """With the pinner's automatic re-send held back, a later joiner shows the pin as waiting for
    keys; the re-send (same pin_id) then fills the panel."""
    server = keyed_node
    with python_host(server, lobby=False) as (created, host_room):
        server.run(host_room.pin("Breathe in for four.", links=[("Guide", "https://example.org/")]))
        host_room._schedule_repin = lambda: None  # type: ignore[method-assign]
        with tab(browser) as t:
            page = t.page
            join(page, str(created.link), "Ana")
            page.get_by_text("Pinned message: waiting for the host's keys…").wait_for()
            pinned = host_room.pinned
            assert pinned is not None
            fields = {
                "pin_id": pinned.pin_id,
                "links": [{"label": "Guide", "url": "https://example.org/"}],
            }
            server.run(host_room.send(pinned.text, pin=True, **fields))
            page.locator(".pinned", has_text="Breathe in for four.").wait_for()
            page.locator(".pinned").get_by_role("link", name="Guide").wait_for()
            assert page.get_by_text("waiting for the host's keys").count() == 0
            assert t.errors == []
