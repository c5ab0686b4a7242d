"""More room states said plainly at the composer (real Chromium against real nodes).

The server restarting under a person (the room is gone when the connection comes back), a message
held back by the rate limit (a countdown, then sent without the person doing anything), and the
sentence for each way a room ends that a person can meet: the host ends the session, the session
reaches its end time, the person is removed, the person leaves. Each is checked at 360x740 with
the state line inside the viewport, and no raw code (a word_with_underscores, "Refused (") on
the page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatserver.client import ChatClient

from .conftest import ServerThread, issue
from .test_console_controls import console_session, eventually, python_host, python_member
from .test_web import join, own_messages, say, tab, wait_sent

SMALL = (360, 740)
SIZES = [SMALL, (1280, 800)]
GONE = (
    "The connection came back, but this room is gone: the server restarted or the room closed "
    "while you were away. Nothing you did caused this."
)
RAW_CODE = re.compile(r"\b[A-Za-z0-9]+_[A-Za-z0-9_]+\b")


class Restartable:
    """A node that can be stopped and replaced by a fresh one on the same port (rooms live in
    memory, so every room is gone after a restart)."""

    def __init__(self, **overrides: Any) -> None:
        self._overrides = overrides
        self.server = ServerThread(**overrides).start()

    @property
    def url(self) -> str:
        return self.server.url

    def run(self, coro: Any, timeout: float = 20) -> Any:
        return self.server.run(coro, timeout)

    def restart(self) -> None:
        port = self.server.port
        self.server.stop()
        deadline = time.monotonic() + 10
        while True:
            try:
                self.server = ServerThread(port, **self._overrides).start()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def restartable(web_dist: Path) -> Iterator[Restartable]:
    node = Restartable()
    yield node
    node.stop()


def status(page: Any) -> Any:
    """The composer's status line (a polite live region right above the message box)."""
    return page.locator("[data-slot=room-state]")


def said(page: Any, text: str, timeout: float = 20000) -> Any:
    """Wait until the status line says exactly `text`; the line."""
    line = status(page)
    try:
        line.filter(has_text=text).wait_for(timeout=timeout)
    except Exception as exc:
        shown = line.inner_text() if line.count() else "(no status line)"
        raise AssertionError(f"the composer says {shown!r}, not {text!r}") from exc
    assert line.inner_text().strip() == text
    return line


def in_viewport(page: Any, locator: Any) -> None:
    """The element is on screen: its bounding box lies within the window (not scrolled away)."""
    assert locator.is_visible()
    box = locator.bounding_box()
    assert box is not None
    size = page.viewport_size
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= size["width"], (box, size)
    assert box["y"] + box["height"] <= size["height"], (box, size)


def no_raw_codes(page: Any) -> None:
    text = page.locator("body").inner_text()
    assert "Refused (" not in text
    assert "Something went wrong" not in text
    assert RAW_CODE.search(text) is None, RAW_CODE.search(text)


# --- the server restarted ----------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_server_restart_says_the_room_is_gone_and_offers_the_open_rooms(
    browser: Any, restartable: Restartable, width: int, height: int
) -> None:
    node = restartable
    host = ChatClient(node.url)
    node.run(host.connect())
    created = node.run(host.create_room())
    node.run(host.join(str(created.host_link), nickname="Heron"))
    with tab(browser, width, height) as t:
        page = t.page
        join(page, str(created.link), "Ana")
        say(page, "still here")
        wait_sent(page, "still here")

        node.restart()  # the Python host's connection goes with the old node
        line = said(page, GONE, timeout=30000)
        text = page.locator("main").inner_text()
        assert "Rooms end when everyone has left" not in text
        assert "This room closed after everyone had left." not in text
        no_raw_codes(page)
        if (width, height) == SMALL:
            in_viewport(page, line)
        assert page.get_by_label("Message", exact=True).is_disabled()
        back = page.get_by_role("link", name="See open rooms")
        assert back.is_visible()
        back.click()
        page.get_by_role("heading", name="Open rooms").wait_for()
        assert t.errors == []


# --- the rate limit ----------------------------------------------------------------------------


def countdown(page: Any) -> int:
    """The seconds the held-back line says (read again for up to 2 s: the line is rewritten as
    the countdown ticks)."""
    pattern = r"Your message is held back for a moment: it goes out in (\d+) s\."
    text = ""
    for _ in range(20):
        text = status(page).inner_text()
        match = re.search(pattern, text)
        if match is not None:
            return int(match.group(1))
        page.wait_for_timeout(100)
    raise AssertionError(f"no countdown in {text!r}")


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_rate_limited_message_counts_down_and_goes_out_by_itself(
    browser: Any, web_dist: Path, width: int, height: int
) -> None:
    # Two messages at once, then one every 5 s.
    server = ServerThread(msg_rate_per_s=0.2, msg_burst=2).start()
    host = ChatClient(server.url)
    server.run(host.connect())
    try:
        created = server.run(host.create_room())
        server.run(host.join(str(created.host_link), nickname="Heron"))
        with tab(browser, width, height) as t:
            page = t.page
            join(page, str(created.link), "Ana")
            for text in ("one", "two", "three"):
                say(page, text)
            line = status(page)
            line.filter(has_text="Your message is held back for a moment").wait_for()
            # The server's retry_after depends on how full the bucket was: at most the 5 s.
            first = countdown(page)
            assert 1 <= first <= 5, first
            # With a wait of 1 s the line may already be gone: look at it only when it stays.
            if (width, height) == SMALL and first >= 2:
                in_viewport(page, line)
            no_raw_codes(page)
            assert own_messages(page, "three").inner_text().endswith("Sending…")
            if first >= 3:  # time enough to see it tick down before the message goes
                page.wait_for_timeout(1600)
                assert countdown(page) < first
            # Nobody touches the page: the held message goes out when the wait is over.
            wait_sent(page, "three")
            for text in ("one", "two", "three"):
                assert own_messages(page, text).locator(".state").inner_text() == "Sent"
            line.filter(has_text="held back").wait_for(state="detached")
            assert t.errors == []
    finally:
        server.run(host.close(leave=False))
        server.stop()


# --- how a room ends ---------------------------------------------------------------------------


def test_host_ends_the_session_member_reads_it_at_the_composer(
    browser: Any, keyed_node: ServerThread
) -> None:
    server = keyed_node
    with tab(browser) as host_tab, tab(browser, *SMALL) as guest_tab:
        host, guest = host_tab.page, guest_tab.page
        link = console_session(host, server, lobby=False)
        join(guest, link, "Ana")
        host.get_by_role("button", name="End session").click()
        host.get_by_role("button", name="Yes, end it for everyone").click()
        line = said(guest, "The host ended the session.")
        in_viewport(guest, line)
        no_raw_codes(guest)
        assert guest.get_by_label("Message", exact=True).is_disabled()
        # The host reads a neutral line, not "the host ended".
        said(host, "The session has ended.")
        no_raw_codes(host)
        assert host_tab.errors == [] and guest_tab.errors == []


def test_session_end_time_is_said_at_the_composer(
    browser: Any, web_dist: Path, tmp_path: Path
) -> None:
    server = ServerThread(key_file=str(tmp_path / "server.key"), session_overrun_s=0.5).start()
    try:
        began = time.time()
        with (
            python_host(server, lobby=False, duration_s=600) as (created, host_room),
            tab(browser, *SMALL) as t,
        ):
            page = t.page
            join(page, str(created.link), "Ana")
            # Bring the end forward: a couple of seconds from now.
            server.run(host_room.settings(duration_s=time.time() - began + 2))
            line = said(page, "The session reached its end time.")
            in_viewport(page, line)
            no_raw_codes(page)
            assert page.get_by_label("Message", exact=True).is_disabled()
            assert t.errors == []
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["room", "session"])
def test_removal_is_said_at_the_composer(browser: Any, keyed_node: ServerThread, kind: str) -> None:
    server = keyed_node
    host = ChatClient(server.url)
    server.run(host.connect())
    try:
        if kind == "session":
            server.run(host.sign_in(issue(server)))
            created = server.run(host.create_session(lobby=False))
        else:
            created = server.run(host.create_room())
        host_room = server.run(host.join(str(created.host_link), nickname="Heron"))
        with tab(browser, *SMALL) as t:
            page = t.page
            join(page, str(created.link), "Ana")
            assert eventually(lambda: len(host_room.members) == 2)
            ana = next(mid for mid, m in host_room.members.items() if m.pseudonym == "Ana")
            server.run(host_room.remove(ana))
            expected = (
                "The host removed you from this session."
                if kind == "session"
                else "The host removed you from this room."
            )
            line = said(page, expected)
            in_viewport(page, line)
            no_raw_codes(page)
            assert page.get_by_label("Message", exact=True).is_disabled()
            assert t.errors == []
    finally:
        server.run(host.close(leave=False))


@pytest.mark.parametrize("kind", ["room", "session"])
def test_leaving_goes_to_the_open_rooms_with_a_plain_goodbye(
    browser: Any, keyed_node: ServerThread, kind: str
) -> None:
    server = keyed_node
    with tab(browser) as host_tab, tab(browser, *SMALL) as guest_tab:
        host, guest = host_tab.page, guest_tab.page
        if kind == "session":
            link = console_session(host, server, lobby=False)
        else:
            client = ChatClient(server.url)
            server.run(client.connect())
            created = server.run(client.create_room())
            server.run(client.join(str(created.host_link), nickname="Heron"))
            link = str(created.link)
        join(guest, link, "Ana")
        sam, sam_room = server.run(python_member(server.url, link, "Sam"))
        try:
            assert eventually(lambda: len(sam_room.members) == 3)
            guest.get_by_role("button", name="Leave", exact=True).click()
            guest.get_by_role("heading", name="Open rooms").wait_for()
            # The composer is gone with the room; the page says goodbye plainly.
            assert status(guest).count() == 0
            card = guest.get_by_text("Before you go: how are you feeling now?")
            card.wait_for()
            in_viewport(guest, card)
            no_raw_codes(guest)
            # The others read that Ana left (not that she was removed or lost her connection).
            assert eventually(lambda: len(sam_room.members) == 2)
            if kind == "session":
                host.get_by_text("Ana left.").wait_for()
                no_raw_codes(host)
            assert host_tab.errors == [] and guest_tab.errors == []
        finally:
            server.run(sam.close(leave=False))
            if kind == "room":
                server.run(client.close(leave=False))
