"""Room states said plainly at the composer (real Chromium, at 360x740 and 1280x800).

A removed member reads who removed them; pause and slow mode are announced above the message box
(with the time until the next message); a peer room's starter gets peer-room tools only; a
session host's Leave asks first, with Cancel focused.
"""

from __future__ import annotations

from typing import Any

import pytest

from chatserver.client import ChatClient

from .conftest import ServerThread
from .test_console_controls import console_session
from .test_web import create_private_room, join, say, tab, wait_sent

SIZES = [(360, 740), (1280, 800)]


def status(page: Any) -> Any:
    """The composer's status line (a polite live region right above the message box)."""
    return page.locator("[data-slot=room-state]")


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_pause_slow_mode_and_removal_are_said_at_the_composer(
    browser: Any, node: ServerThread, width: int, height: int
) -> None:
    host = ChatClient(node.url)
    node.run(host.connect())
    try:
        created = node.run(host.create_room())
        assert created.host_link is not None
        host_room = node.run(host.join(created.host_link, nickname="Heron"))
        with tab(browser, width, height) as t:
            page = t.page
            join(page, str(created.link), "Ana")
            line = status(page)
            assert line.get_attribute("aria-live") == "polite"

            node.run(host_room.settings(paused=True))
            line.filter(has_text="The host paused the chat").wait_for()
            node.run(host_room.settings(paused=False))
            line.filter(has_text="The host paused the chat").wait_for(state="detached")

            node.run(host_room.settings(slow_mode_s=30))
            line.filter(has_text="Slow mode: one message every 30 s").wait_for()
            say(page, "first one")
            wait_sent(page, "first one")
            line.filter(has_text="You can send your next message in").wait_for()
            assert line.is_visible()

            ana = next(mid for mid, m in host_room.members.items() if m.pseudonym == "Ana")
            node.run(host_room.remove(ana))
            line.filter(has_text="The host removed you from this room.").wait_for()
            text = page.locator("main").inner_text()
            assert "Something went wrong" not in text
            assert "Refused (" not in text
            assert page.get_by_label("Message", exact=True).is_disabled()
            assert t.errors == []
    finally:
        node.run(host.close(leave=False))


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_peer_room_starter_gets_no_session_tools(
    browser: Any, node: ServerThread, width: int, height: int
) -> None:
    with tab(browser, width, height) as t:
        page = t.page
        create_private_room(page, node)
        page.get_by_role("toolbar", name="Room controls").wait_for()
        page.get_by_role("button", name="Lock the room").wait_for()
        for name in ("End session", "Q&A mode", "Extend 15 min", "Admit all"):
            assert page.get_by_role("button", name=name).count() == 0, name
        assert page.get_by_role("heading", name="Waiting room").count() == 0
        assert page.get_by_role("timer").count() == 0
        assert page.get_by_text("Host tools").count() == 0
        # Leaving a peer room needs no confirmation.
        page.get_by_role("button", name="Leave", exact=True).click()
        page.get_by_role("heading", name="Open rooms").wait_for()
        assert t.errors == []


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_session_host_leave_asks_first_with_cancel_focused(
    browser: Any, keyed_node: ServerThread, width: int, height: int
) -> None:
    server = keyed_node
    with tab(browser, width, height) as t:
        page = t.page
        console_session(page, server, lobby=False)
        page.get_by_role("button", name="Leave", exact=True).click()
        dialog = page.get_by_role("dialog", name="Leave the session?")
        dialog.wait_for()
        dialog.get_by_text("The group stays open without you").wait_for()
        focused = page.evaluate("document.activeElement && document.activeElement.textContent")
        assert focused == "Cancel"
        dialog.get_by_role("button", name="Cancel").click()
        dialog.wait_for(state="detached")
        page.get_by_role("toolbar", name="Host controls").wait_for()

        page.get_by_role("button", name="Leave", exact=True).click()
        page.get_by_role("dialog", name="Leave the session?").get_by_role(
            "button", name="Leave the session"
        ).click()
        page.get_by_role("heading", name="Open rooms").wait_for()
        assert t.errors == []


def test_members_read_that_the_host_left_a_session(browser: Any, keyed_node: ServerThread) -> None:
    server = keyed_node
    with tab(browser) as host_tab, tab(browser, 360, 740) as guest_tab:
        host, guest = host_tab.page, guest_tab.page
        link = console_session(host, server, lobby=False)
        join(guest, link, "Ana")
        host.get_by_role("button", name="Leave", exact=True).click()
        host.get_by_role("button", name="Leave the session").click()
        status(guest).filter(has_text="The host has left the session.").wait_for()
        assert guest.get_by_label("Message", exact=True).is_enabled()
        assert host_tab.errors == [] and guest_tab.errors == []
