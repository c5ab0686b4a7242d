"""A reload keeps the room (issue 15, item 5), in a real Chromium against a real node: the same seat
(resumed, so nobody sees the person leave and come back), the same name, the conversation shown
again, messages from others read on with the kept keys, and what was still unsent goes out once.
What is kept lives in the tab's sessionStorage only, and leaving wipes it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chatserver.client import MemberJoined, MemberLeft, Message, Room, RoomEvent

from .conftest import ServerThread
from .test_console_controls import console_session, eventually, python_member
from .test_report_from_page import report_button
from .test_trust import python_clients, received
from .test_web import create_private_room, messages, own_messages, say, tab, wait_sent


class Recorder:
    """Every event a Python member's room gives, kept in order (so a test can look back)."""

    def __init__(self, node: ServerThread, room: Room) -> None:
        self.events: list[RoomEvent] = []
        self.room = room

        async def drain() -> None:
            async for ev in room.events():
                self.events.append(ev)

        self._task = node.submit(drain())

    def wait(self, match: Callable[[RoomEvent], bool], timeout: float = 10) -> RoomEvent:
        assert eventually(lambda: any(match(e) for e in self.events), timeout), "no such event"
        return next(e for e in self.events if match(e))

    def comings_and_goings(self, member_id: str) -> list[RoomEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, (MemberLeft, MemberJoined)) and e.member_id == member_id
        ]


def storage_keys(page: Any) -> list[str]:
    keys: list[str] = page.evaluate("Object.keys(sessionStorage)")
    return sorted(keys)


def test_a_reload_resumes_the_seat_and_shows_the_conversation(
    browser: Any, node: ServerThread
) -> None:
    with python_clients(node, 1) as (sam,), tab(browser, 360, 740) as t:
        page = t.page
        link = create_private_room(page, node)
        sam_room = node.run(sam.join(link, nickname="Sam"))
        log = Recorder(node, sam_room)
        page.locator(".people li", has_text="Sam").wait_for(state="attached")
        river = next(mid for mid, m in sam_room.members.items() if m.pseudonym == "River")

        say(page, "said before the reload")
        wait_sent(page, "said before the reload")
        node.run(sam_room.send("Sam wrote this before"))
        messages(page, "Sam wrote this before").wait_for()
        assert log.comings_and_goings(river) == []
        time.sleep(0.6)  # the room's state is written shortly after each change

        page.reload()
        page.get_by_text("You are back in the room").wait_for()
        # The conversation as it was, and the same name.
        own_messages(page, "said before the reload").wait_for()
        messages(page, "Sam wrote this before").wait_for()
        assert page.locator("#you-h + p").text_content() == "You appear as River."
        # The join line is the one kept from before: no second join.
        assert page.get_by_text("You joined as").count() == 1

        # Read on with the kept keys: Sam's next message, under the chain Sam already shared.
        node.run(sam_room.send("Sam wrote this after"))
        messages(page, "Sam wrote this after").wait_for()
        # Send on: a fresh chain goes to Sam, the same member id signs it.
        say(page, "said after the reload")
        got = log.wait(received("said after the reload"))
        assert isinstance(got, Message) and got.sender_id == river
        wait_sent(page, "said after the reload")
        # Nobody saw River leave or join again: the seat was resumed, not retaken.
        assert log.comings_and_goings(river) == []
        assert page.get_by_text("could not be decrypted").count() == 0
        assert t.errors == []


def test_messages_sent_during_the_reload_are_read_after_it(
    browser: Any, node: ServerThread
) -> None:
    """What others wrote while the page was away arrives after the reload (the server replays it
    from the kept position) and is shown once, after the kept conversation."""
    with python_clients(node, 1) as (sam,), tab(browser) as t:
        page = t.page
        before = node.sids()
        link = create_private_room(page, node)
        (sid,) = node.sids() - before
        sam_room = node.run(sam.join(link, nickname="Sam"))
        page.locator(".people li", has_text="Sam").wait_for(state="attached")
        node.run(sam_room.send("first from Sam"))
        messages(page, "first from Sam").wait_for()
        time.sleep(0.6)
        # Keep the page from reconnecting while Sam writes, then reload.
        page.context.set_offline(True)
        node.disconnect(sid)
        page.locator("#conn[data-state=offline]").wait_for()
        for i in range(3):
            node.run(sam_room.send(f"while away {i}"))
        page.context.set_offline(False)
        page.reload()
        page.get_by_text("You are back in the room").wait_for()
        for i in range(3):
            messages(page, f"while away {i}").wait_for()
        assert messages(page, "first from Sam").count() == 1
        texts = page.locator(".msg:not(.own) .text").all_inner_texts()
        assert texts == ["first from Sam", "while away 0", "while away 1", "while away 2"]
        assert t.errors == []


def test_an_unsent_message_goes_out_once_after_a_reload(browser: Any, node: ServerThread) -> None:
    with python_clients(node, 1) as (sam,), tab(browser) as t:
        page = t.page
        before = node.sids()
        link = create_private_room(page, node)
        (sid,) = node.sids() - before
        sam_room = node.run(sam.join(link, nickname="Sam"))
        log = Recorder(node, sam_room)
        page.locator(".people li", has_text="Sam").wait_for(state="attached")
        page.context.set_offline(True)
        node.disconnect(sid)
        page.locator("#conn[data-state=offline]").wait_for()
        say(page, "typed while offline")
        own_messages(page, "typed while offline").and_(
            page.locator("[data-state=pending]")
        ).wait_for()
        time.sleep(0.6)
        page.context.set_offline(False)
        page.reload()
        page.get_by_text("You are back in the room").wait_for()
        log.wait(received("typed while offline"))
        wait_sent(page, "typed while offline")
        time.sleep(1)
        assert len([e for e in log.events if received("typed while offline")(e)]) == 1
        assert own_messages(page, "typed while offline").count() == 1
        assert t.errors == []


def test_leaving_wipes_what_the_tab_kept(browser: Any, node: ServerThread) -> None:
    with tab(browser) as t:
        page = t.page
        create_private_room(page, node)
        say(page, "something private")
        wait_sent(page, "something private")
        assert eventually(lambda: any(k.startswith("chatserver.log.") for k in storage_keys(page)))
        assert eventually(
            lambda: any(k.startswith("chatserver.state.") for k in storage_keys(page))
        )
        page.get_by_role("button", name="Leave", exact=True).click()
        page.get_by_role("heading", name="Open rooms").wait_for()
        time.sleep(0.5)  # a late write of the room's state must not bring it back
        assert [k for k in storage_keys(page) if k.startswith("chatserver.")] == []


def test_a_peer_member_keeps_their_random_name_and_seat_across_a_reload(
    browser: Any, node: ServerThread
) -> None:
    with python_clients(node, 1) as (host,), tab(browser) as t:
        page = t.page
        created = node.run(host.create_room(listed=True, topic="sleep"))
        host_room = node.run(host.join(created.link, nickname="Robin"))
        log = Recorder(node, host_room)
        page.goto(str(created.link))
        page.get_by_role("button", name="Join the room").click()
        page.get_by_text("You joined as").wait_for()
        name = page.locator("#you-h + p").text_content()
        assert eventually(lambda: len(host_room.members) == 2)
        time.sleep(0.6)
        page.reload()
        page.get_by_text("You are back in the room").wait_for()
        assert page.locator("#you-h + p").text_content() == name
        say(page, "still me")
        log.wait(received("still me"))
        assert not [e for e in log.events if isinstance(e, MemberLeft)]
        assert len([e for e in log.events if isinstance(e, MemberJoined)]) == 1
        assert t.errors == []


def test_a_message_from_before_a_reload_can_still_be_reported(
    browser: Any, keyed_node: ServerThread
) -> None:
    """The newest messages' report evidence is kept with the room's state: after a reload the
    member reports a message received before it, and the host's queue shows it verified."""
    server = keyed_node
    with tab(browser) as host_tab, tab(browser, 360, 740) as member_tab:
        host, member = host_tab.page, member_tab.page
        link = console_session(host, server, lobby=False)
        kim, kim_room = server.run(python_member(server.url, link, "Kim"))
        try:
            member.goto(link)
            member.get_by_label("Your name here (optional)").fill("Ana")
            member.get_by_role("button", name="Join the room").click()
            member.get_by_text("You joined as Ana").wait_for()
            server.run(kim_room.send("you are worthless"))
            messages(member, "you are worthless").wait_for()
            time.sleep(0.6)
            member.reload()
            member.get_by_text("You are back in the room").wait_for()
            report_button(member, "you are worthless").click()
            dialog = member.get_by_role("dialog", name="Report this message")
            dialog.get_by_label("Harassment", exact=True).check()
            dialog.get_by_role("button", name="Send report").click()
            member.get_by_text("Reported to the room's hosts.").wait_for()
            report = host.locator(".report-queue .report")
            report.locator(".report-field", has_text="Text: you are worthless").wait_for()
            report.get_by_text("Verified:").wait_for()
            assert member_tab.errors == [] and host_tab.errors == []
        finally:
            server.run(kim.close(leave=False))


def test_a_damaged_room_state_falls_back_to_taking_the_seat_again(
    browser: Any, node: ServerThread
) -> None:
    """Storage is the tab's own but may hold anything: a state that does not fit is not trusted;
    the page takes the same seat again with the kept identity and still shows the conversation."""
    with python_clients(node, 1) as (sam,), tab(browser) as t:
        page = t.page
        link = create_private_room(page, node)
        sam_room = node.run(sam.join(link, nickname="Sam"))
        log = Recorder(node, sam_room)
        page.locator(".people li", has_text="Sam").wait_for(state="attached")
        river = next(mid for mid, m in sam_room.members.items() if m.pseudonym == "River")
        say(page, "kept in the log")
        wait_sent(page, "kept in the log")
        time.sleep(0.6)
        # Damage the kept state, and keep the page from writing a good one as it goes.
        page.evaluate(
            """() => {
              const set = Storage.prototype.setItem;
              for (const k of Object.keys(sessionStorage))
                if (k.startsWith('chatserver.state.'))
                  set.call(sessionStorage, k, JSON.stringify(
                    {...JSON.parse(sessionStorage.getItem(k)), crypto: {v: 9}}));
              Storage.prototype.setItem = function (k, v) {
                if (!String(k).startsWith('chatserver.state.')) set.call(this, k, v);
              };
            }"""
        )
        page.reload()
        page.get_by_text("You are back in the room").wait_for()
        own_messages(page, "kept in the log").wait_for()
        say(page, "still River")
        got = log.wait(received("still River"))
        assert isinstance(got, Message) and got.sender_id == river
        # The older way ran: the seat was given up and taken again (Sam saw River go and come).
        assert [type(e).__name__ for e in log.comings_and_goings(river)] == [
            "MemberLeft",
            "MemberJoined",
        ]
