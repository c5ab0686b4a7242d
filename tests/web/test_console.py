"""The therapist console in a real Chromium against a real node: sign in with an issued
credential, create a session, admit a Python client from the lobby queue, talk both ways, end."""

from __future__ import annotations

import asyncio
from typing import Any

from chatserver.client import ChatClient, Room, RoomEnded

from .conftest import ServerThread, issue
from .test_web import messages, next_message, say, tab


async def wait_ended(room: Room, timeout: float = 10) -> RoomEnded:
    async def first() -> RoomEnded:
        async for ev in room.events():
            if isinstance(ev, RoomEnded):
                return ev
        raise AssertionError("events ended without RoomEnded")

    return await asyncio.wait_for(first(), timeout)


def open_session(page: Any, server: ServerThread, token: str) -> str:
    """Sign in on the page, create a session, enter it as host; returns the participants' link."""
    page.goto(server.url + "/")
    page.get_by_role("link", name="Therapist sign-in").click()
    page.get_by_label("Your credential").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for()
    page.get_by_label("Title", exact=True).fill("Thursday group")
    page.get_by_label("Duration in minutes (optional)").fill("60")
    page.get_by_role("button", name="Create session").click()
    link: str = page.get_by_label("Link for participants").input_value()
    assert link.startswith(server.url + "/r#")
    page.get_by_role("button", name="Open the session as host").click()
    page.get_by_role("toolbar", name="Host controls").wait_for()
    page.get_by_text("Time left:").wait_for()
    return link


def test_console_signs_in_admits_talks_and_ends(browser: Any, keyed_node: ServerThread) -> None:
    server = keyed_node
    token = issue(server)
    client = ChatClient(server.url)
    server.run(client.connect())
    try:
        with tab(browser) as t:
            page = t.page
            link = open_session(page, server, token)
            # The credential stays in this tab's sessionStorage, never in localStorage.
            assert page.evaluate("localStorage.length") == 0

            waiting = server.run(client.knock(link, "Sam"))
            assert waiting.info["duration_s"] == 3600
            page.get_by_role("button", name="Admit Sam").click()
            assert server.run(waiting.admitted())
            room = server.run(waiting.enter())

            say(page, "Welcome, Sam")
            got = server.run(next_message(room))
            assert got.text == "Welcome, Sam"
            server.run(room.send("Thank you for having me"))
            messages(page, "Thank you for having me").wait_for()

            page.get_by_role("button", name="End session").click()
            page.get_by_role("button", name="Yes, end it for everyone").click()
            ended = server.run(wait_ended(room))
            assert ended is not None
            page.get_by_role("heading", name="The session has ended.").wait_for()
            assert t.errors == []
    finally:
        server.run(client.close(leave=False))


def test_console_decline_shows_nothing(browser: Any, keyed_node: ServerThread) -> None:
    server = keyed_node
    client = ChatClient(server.url)
    server.run(client.connect())
    try:
        with tab(browser) as t:
            page = t.page
            link = open_session(page, server, issue(server))
            waiting = server.run(client.knock(link, "Kim"))
            page.get_by_role("button", name="Decline Kim").click()
            assert server.run(waiting.admitted()) is False
            assert waiting.declined_reason == "declined"
            assert client.rooms == {}
            page.get_by_text("Nobody is waiting.").wait_for()
            assert t.errors == []
    finally:
        server.run(client.close(leave=False))


def test_browser_participant_waits_is_admitted_and_trusts_only_admitted_members(
    browser: Any, keyed_node: ServerThread
) -> None:
    """A participant in the browser waits in the lobby, is admitted, and shares keys with a member
    whose card carries the host's admission (the browser checks it, not only the server)."""
    server = keyed_node
    client = ChatClient(server.url)
    server.run(client.connect())
    try:
        with tab(browser) as host_tab, tab(browser) as guest_tab:
            host, guest = host_tab.page, guest_tab.page
            link = open_session(host, server, issue(server))
            guest.goto(link)
            guest.get_by_label("Your name here (optional)").fill("Ana")
            guest.get_by_role("button", name="Join the room").click()
            guest.get_by_text("You are in the waiting room").wait_for()
            host.get_by_role("button", name="Admit Ana").click()
            guest.get_by_role("log", name="Messages").wait_for()

            waiting = server.run(client.knock(link, "Sam"))
            host.get_by_role("button", name="Admit Sam").click()
            assert server.run(waiting.admitted())
            room = server.run(waiting.enter())

            say(guest, "hello from Ana")
            got = server.run(next_message(room))
            assert got.text == "hello from Ana"
            server.run(room.send("hello Ana"))
            messages(guest, "hello Ana").wait_for()
            assert host_tab.errors == [] and guest_tab.errors == []
    finally:
        server.run(client.close(leave=False))
