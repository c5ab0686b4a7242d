"""The trust layer in a real Chromium against a real node (issue 12): a quote is shown only when a
host signed the message; moderators see every field of a reported body; and joining, reloading
and reconnecting (resume) still work now that each of them answers a room challenge with the
card key's seat proof (knocking and entering a lobby: tests/web/test_console_controls.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chatserver.client import ChatClient, Message, Room, RoomEvent

from .conftest import ServerThread
from .test_console_controls import eventually, until
from .test_web import create_private_room, join, messages, say, tab, wait_sent


def received(text: str) -> Callable[[RoomEvent], bool]:
    return lambda e: isinstance(e, Message) and not e.own and e.text == text


@contextmanager
def python_clients(server: ServerThread, n: int) -> Iterator[list[ChatClient]]:
    clients = [ChatClient(server.url) for _ in range(n)]
    for c in clients:
        server.run(c.connect())
    try:
        yield clients
    finally:
        for c in clients:
            server.run(c.close(leave=False))


def message_item(page: Any, text: str) -> Any:
    return page.locator(".msg:not(.own)", has_text=text)


def test_a_quote_shows_only_when_a_host_signed_the_message(
    browser: Any, node: ServerThread
) -> None:
    """Any member can put `quote: {asker, text}` in a body: a member's message shows its text
    alone, never "Alice asked: …"; the same quote from the room's host is shown."""
    with python_clients(node, 2) as (host, sam), tab(browser) as t:
        page = t.page
        created = node.run(host.create_room(listed=False))
        assert created.host_link is not None
        host_room = node.run(host.join(created.host_link, nickname="Robin"))
        sam_room = node.run(sam.join(created.link, nickname="Sam"))
        join(page, str(created.link), "Ana")
        page.locator(".people li", has_text="Sam").wait_for()
        assert host_room.members[host_room.member_id].role == "host"
        assert sam_room.members[sam_room.member_id].role == "member"

        forged = {"asker": "Alice", "text": "Is it normal to feel numb?"}
        node.run(sam_room.send("Just my own words", quote=forged))
        item = message_item(page, "Just my own words")
        item.wait_for()
        assert item.locator(".quote").count() == 0
        assert "asked" not in item.inner_text()
        assert "Is it normal to feel numb?" not in item.inner_text()

        node.run(host_room.send("Yes, it happens to many.", quote=forged))
        answer = message_item(page, "Yes, it happens to many.")
        answer.locator(".quote", has_text="Alice asked:").wait_for()
        answer.locator(".quote", has_text="Is it normal to feel numb?").wait_for()
        assert t.errors == []


def test_the_report_view_shows_every_field_of_the_reported_body(
    browser: Any, node: ServerThread
) -> None:
    """Abuse placed in `quote`, `cw` or a field no client renders is visible to the moderator,
    as text, with labels."""
    with python_clients(node, 2) as (sam, kim), tab(browser) as t:
        page = t.page
        link = create_private_room(page, node)  # River, the creator, holds the host seat
        page.get_by_role("heading", name="Room tools").wait_for()
        sam_room = node.run(sam.join(link, nickname="Sam"))
        kim_room = node.run(kim.join(link, nickname="Kim"))
        page.locator(".people li", has_text="Kim").wait_for()

        quote = {"asker": "Bob", "text": "<b>the abuse hides here</b>"}
        node.run(
            sam_room.send(
                "an innocent line", cw="the cw hides more", quote=quote, extra_field="and here"
            )
        )
        got = node.run(until(kim_room, received("an innocent line")))
        assert isinstance(got, Message)
        node.run(kim_room.report(got, "harassment"))

        report = page.locator(".report-queue .report")
        report.wait_for()
        fields = report.locator(".report-field")
        fields.filter(has_text="Text: an innocent line").wait_for()
        fields.filter(has_text="Content warning: the cw hides more").wait_for()
        quote_line = fields.filter(has_text="Quote:")
        assert quote_line.inner_text() == "Quote: " + json.dumps(quote, separators=(",", ":"))
        fields.filter(has_text="and here").wait_for()
        assert "extra_field" in fields.filter(has_text="and here").inner_text()
        # As text, never as HTML.
        assert report.locator("b").count() == 0
        assert "from Sam" in report.inner_text()
        assert t.errors == []


def test_join_reconnect_and_reload_take_the_seat_with_seat_proofs(
    browser: Any, node: ServerThread
) -> None:
    """A private room: the creator joins (seat proof and link proof over one challenge), a
    Python member joins; the page's connection drops and it resumes its seat (same member id);
    then the page reloads and takes the same seat back from sessionStorage."""
    with python_clients(node, 1) as (sam,), tab(browser) as t:
        page = t.page
        before = node.sids()
        link = create_private_room(page, node)
        (sid,) = node.sids() - before
        sam_room = node.run(sam.join(link, nickname="Sam"))
        page.locator(".people li", has_text="Sam").wait_for()
        river = next(mid for mid, m in sam_room.members.items() if m.pseudonym == "River")

        say(page, "joined with a seat proof")
        got = node.run(until(sam_room, received("joined with a seat proof")))
        assert isinstance(got, Message) and got.sender_id == river

        # The server drops the connection: the page resumes (room.resume with a seat proof).
        node.disconnect(sid)
        page.get_by_text("Reconnected.").wait_for()
        assert page.get_by_text("rejoined with a new identity").count() == 0
        say(page, "resumed the same seat")
        got = node.run(until(sam_room, received("resumed the same seat")))
        assert isinstance(got, Message) and got.sender_id == river
        node.run(sam_room.send("welcome back"))
        messages(page, "welcome back").wait_for()

        # A reload within the grace: resume the seat with the stored identity's key.
        page.reload()
        page.get_by_text("You joined as River").wait_for()
        wait_for_member(sam_room, river)
        say(page, "back after a reload")
        got = node.run(until(sam_room, received("back after a reload")))
        assert isinstance(got, Message) and got.sender_id == river
        wait_sent(page, "back after a reload")
        assert t.errors == []


def wait_for_member(room: Room, member_id: str) -> None:
    assert eventually(lambda: member_id in room.members, timeout=10)
