"""Help in view and quick exit, in a real Chromium at a phone's and a desktop's size, asserting what a
person sees: the crisis help opens on screen next to the message box (or as a focused dialog) and
is announced; "Get help now" and "Leave quickly" stay on screen and never cover the message box;
quick exit counts only bare Shift presses, wipes what the page keeps and leaves no way Back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from chatserver.client import ChatClient

from .conftest import ServerThread
from .test_console_controls import console_session
from .test_web import create_private_room, join, python_join, say, wait_sent

NEUTRAL = "https://neutral.example/weather"
START = "https://elsewhere.example/start"
SIZES = [(360, 740), (1280, 800)]
CRISIS = "honestly I feel like I want to end it all tonight"
Box = dict[str, float]


@pytest.fixture
def exit_node(web_dist: Path) -> Iterator[ServerThread]:
    server = ServerThread(exit_url=NEUTRAL).start()
    yield server
    server.stop()


@contextmanager
def sized(browser: Any, width: int, height: int) -> Iterator[Any]:
    """A fresh context at a size (en-GB, London); the neutral and start sites answer locally."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="en-GB", timezone_id="Europe/London"
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])

    def answer(title: str) -> Any:
        body = f"<title>{title}</title><p>{title}</p>"
        return lambda route: route.fulfill(status=200, content_type="text/html", body=body)

    context.route("https://neutral.example/**", answer("Weather"))
    context.route(START, answer("Elsewhere"))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(15000)
    try:
        yield page
        assert errors == []
    finally:
        context.close()


def box_of(locator: Any) -> Box:
    box = locator.bounding_box()
    assert box is not None, "not rendered"
    return dict(box)


def header_bottom(page: Any) -> float:
    return float(
        page.evaluate("document.querySelector('header.site').getBoundingClientRect().bottom")
    )


def assert_in_view(page: Any, locator: Any, below_header: bool = True) -> None:
    """Entirely inside the window (and, for page content, not under the sticky header)."""
    b = box_of(locator)
    w, h = page.viewport_size["width"], page.viewport_size["height"]
    top = header_bottom(page) if below_header else 0
    assert b["x"] >= 0 and b["x"] + b["width"] <= w + 0.5, b
    assert b["y"] >= top - 0.5 and b["y"] + b["height"] <= h + 0.5, (b, top, h)


def overlaps(a: Box, b: Box) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def composer(page: Any) -> tuple[Any, Any]:
    return page.get_by_label("Message", exact=True), page.get_by_role("button", name="Send")


def focused_is_composer(page: Any) -> bool:
    return bool(
        page.evaluate("document.activeElement?.getAttribute('aria-describedby') === 'copy-notice'")
    )


def type_like_a_person(page: Any, text: str, delay_ms: int = 110) -> None:
    """Type key by key, holding Shift for capitals as a person does."""
    for ch in text:
        if ch.isupper():
            page.keyboard.down("Shift")
            page.keyboard.press(ch)
            page.keyboard.up("Shift")
        else:
            page.keyboard.press(ch if ch != " " else "Space")
        page.wait_for_timeout(delay_ms)


def seat_kept(page: Any) -> bool:
    keys = page.evaluate("Object.keys(sessionStorage)")
    return any(k.startswith("chatserver.seat.") for k in keys)


def still_in_room(page: Any, node: ServerThread, room_url: str) -> None:
    assert page.url == room_url
    assert page.get_by_role("log", name="Messages").is_visible()
    assert seat_kept(page)
    assert page.get_by_text("You joined as River").count() == 1


# --- help in view -----------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_crisis_draft_opens_help_next_to_the_message_box_and_announces_it(
    browser: Any, node: ServerThread, width: int, height: int
) -> None:
    with sized(browser, width, height) as page:
        create_private_room(page, node)
        box, send = composer(page)
        box.click()
        box.press_sequentially(CRISIS, delay=15)
        panel = page.get_by_role("region", name="Support is here")
        panel.wait_for()
        assert panel.get_attribute("data-reason") == "draft"
        assert "Samaritans" in panel.inner_text()
        assert_in_view(page, panel)
        assert_in_view(page, box)
        assert_in_view(page, send)
        # Announced politely; the person keeps typing where they were.
        status = page.locator("#help-announce")
        assert status.get_attribute("role") == "status"
        page.wait_for_function(
            "document.getElementById('help-announce').textContent.includes('Support is here')"
        )
        assert focused_is_composer(page)
        # Help never blocks sending.
        box.press("Enter")
        wait_sent(page, "end it all tonight")
        panel.get_by_role("button", name="Close").click()
        assert panel.count() == 0 or panel.is_hidden()
        assert focused_is_composer(page)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_get_help_now_opens_a_focused_dialog_that_escape_closes(
    browser: Any, node: ServerThread, width: int, height: int
) -> None:
    with sized(browser, width, height) as page:
        create_private_room(page, node)
        page.get_by_role("button", name="Get help now").click()
        dialog = page.get_by_role("dialog", name="Support is here")
        dialog.wait_for()
        assert_in_view(page, dialog, below_header=False)
        assert "Samaritans" in dialog.inner_text()
        in_dialog = "!!document.activeElement?.closest('dialog[open]')"
        assert page.evaluate(in_dialog)
        for _ in range(8):  # focus stays inside while the dialog is open
            page.keyboard.press("Tab")
            assert page.evaluate(in_dialog)
        page.keyboard.press("Escape")
        dialog.wait_for(state="hidden")
        assert focused_is_composer(page)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_received_crisis_message_shows_help_and_its_care_note_in_view(
    browser: Any, node: ServerThread, width: int, height: int
) -> None:
    with sized(browser, width, height) as page:
        link = create_private_room(page, node)
        client, room = node.run(python_join(node.url, link, "Willow"))
        try:
            page.locator(".people", has_text="Willow").wait_for(state="attached")
            node.run(room.send("I can't go on, I want to end it all"))
            panel = page.get_by_role("region", name="Support is here")
            panel.wait_for()
            assert panel.get_attribute("data-reason") == "received"
            assert_in_view(page, panel)
            note = page.locator(".msg:not(.own) .care-note")
            note.wait_for()
            assert_in_view(page, note)
            assert_in_view(page, composer(page)[0])
        finally:
            node.run(client.close())


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_get_help_now_and_leave_quickly_stay_in_view_as_the_conversation_scrolls(
    browser: Any, node: ServerThread, width: int, height: int
) -> None:
    with sized(browser, width, height) as page:
        create_private_room(page, node)
        for i in range(25):
            say(page, f"message number {i} " + "and a few more words " * 3)
        wait_sent(page, "message number 24 ")
        log = page.get_by_role("log", name="Messages")
        assert log.evaluate("el => el.scrollHeight > el.clientHeight")
        help_now = page.get_by_role("button", name="Get help now")
        leave = page.get_by_role("button", name="Leave quickly")
        for where in (
            "document.documentElement.scrollHeight",
            "0",
            "document.documentElement.scrollHeight / 2",
        ):
            page.evaluate(f"window.scrollTo(0, {where})")
            log.evaluate("el => { el.scrollTop = el.scrollHeight / 3 }")
            assert_in_view(page, help_now, below_header=False)
            assert_in_view(page, leave, below_header=False)
        assert page.evaluate("window.scrollY") > 0 or page.evaluate(
            "document.documentElement.scrollHeight <= innerHeight"
        )


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_leave_quickly_never_covers_the_message_box_or_send(
    browser: Any, node: ServerThread, width: int, height: int
) -> None:
    with sized(browser, width, height) as page:
        create_private_room(page, node)
        box, send = composer(page)
        leave = page.get_by_role("button", name="Leave quickly")

        def clear() -> None:
            lq = box_of(leave)
            assert not overlaps(lq, box_of(box)), (lq, box_of(box))
            assert not overlaps(lq, box_of(send)), (lq, box_of(send))
            assert_in_view(page, leave, below_header=False)

        clear()  # the layout right after joining
        box.click()
        clear()
        assert_in_view(page, box)
        assert_in_view(page, send)
        for where in ("document.documentElement.scrollHeight", "0"):
            page.evaluate(f"window.scrollTo(0, {where})")
            clear()
        box.press_sequentially(CRISIS, delay=10)  # with the help panel open
        page.get_by_role("region", name="Support is here").wait_for()
        clear()
        if width < 500:
            page.get_by_role("button", name="About this room").click()
            box.click()
            clear()


# --- quick exit -------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_shift_tab_and_typed_capitals_never_exit(
    browser: Any, exit_node: ServerThread, width: int, height: int
) -> None:
    with sized(browser, width, height) as page:
        create_private_room(page, exit_node)
        room_url = page.url
        box, _ = composer(page)
        box.click()
        for _ in range(3):
            page.keyboard.press("Shift+Tab")
            page.wait_for_timeout(250)
        page.wait_for_timeout(400)
        still_in_room(page, exit_node, room_url)
        box.click()
        type_like_a_person(page, "I Am So Tired Today")
        page.wait_for_timeout(400)
        still_in_room(page, exit_node, room_url)
        assert box.input_value() == "I Am So Tired Today"
        # Ctrl+Shift three times (a shortcut, not a bare Shift) does not count either.
        for _ in range(3):
            page.keyboard.press("Control+Shift")
            page.wait_for_timeout(150)
        page.wait_for_timeout(300)
        still_in_room(page, exit_node, room_url)


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("how", ["button", "three-shifts"])
def test_quick_exit_wipes_the_browser_and_back_leaves_the_site(
    browser: Any, exit_node: ServerThread, width: int, height: int, how: str
) -> None:
    with sized(browser, width, height) as page:
        page.goto(START)  # what came before the site: Back must lead here
        create_private_room(page, exit_node)
        # Leave traces: a mood check-in, a topic to collapse, and the seat.
        page.get_by_role("button", name="Okay").click()
        page.get_by_text("Thank you. Be gentle with yourself.").wait_for()
        assert page.evaluate("localStorage.getItem('ps.mood')")
        assert seat_kept(page)
        if how == "button":
            page.get_by_role("button", name="Leave quickly").click()
        else:
            composer(page)[0].click()
            for _ in range(3):
                page.keyboard.press("Shift")
                page.wait_for_timeout(200)
        page.wait_for_url(NEUTRAL)
        assert page.title() == "Weather"
        page.go_back()
        page.wait_for_load_state()
        assert page.url == START
        assert not page.url.startswith(exit_node.url)
        # The site's storage in this tab and browser is empty.
        page.goto(exit_node.url + "/resources.json")
        assert page.evaluate("[localStorage.length, sessionStorage.length]") == [0, 0]
        origins = page.context.storage_state()["origins"]
        assert [o for o in origins if o["origin"] == exit_node.url and o["localStorage"]] == []


def test_quick_exit_leaves_the_room_for_the_others(browser: Any, exit_node: ServerThread) -> None:
    with sized(browser, 1280, 800) as page:
        link = create_private_room(page, exit_node)
        client, room = exit_node.run(python_join(exit_node.url, link, "Willow"))
        try:
            page.locator(".people", has_text="Willow").wait_for(state="attached")
            assert len(room.members) == 2
            page.get_by_role("button", name="Leave quickly").click()
            page.wait_for_url(NEUTRAL)
            deadline = time.monotonic() + 5
            while len(room.members) != 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(room.members) == 1
        finally:
            exit_node.run(client.close())


def test_in_app_moves_keep_one_history_entry(browser: Any, node: ServerThread) -> None:
    with sized(browser, 1280, 800) as page:
        page.goto(START)
        page.goto(node.url + "/")
        arrived = page.evaluate("history.length")
        create_private_room(page, node)  # the directory, the create form, the join form, the room
        page.get_by_role("button", name="Leave", exact=True).click()
        page.get_by_role("heading", name="Open rooms").wait_for()
        page.get_by_role("link", name="Therapist sign-in").click()
        page.get_by_label("Your credential").wait_for()
        page.get_by_role("link", name="Peer support rooms").click()
        page.get_by_role("heading", name="Open rooms").wait_for()
        assert page.evaluate("history.length") == arrived
        page.go_back()
        page.wait_for_load_state()
        assert page.url == START


# --- who help offers ----------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_peer_rooms_offer_no_private_talk_with_the_peer_host(
    browser: Any, node: ServerThread, width: int, height: int
) -> None:
    async def create() -> tuple[ChatClient, str]:
        """A peer room whose host seat (the one who started it) is a Python client, Heron."""
        c = ChatClient(node.url)
        await c.connect()
        created = await c.create_room(listed=False)
        assert created.host_link is not None
        await c.join(str(created.host_link), nickname="Heron")
        return c, str(created.link)

    host_client, link = node.run(create())
    try:
        with sized(browser, width, height) as page:
            join(page, link, "Rowan")
            page.locator(".people", has_text="Heron").wait_for(state="attached")
            composer(page)[0].press_sequentially(CRISIS, delay=10)
            panel = page.get_by_role("region", name="Support is here")
            panel.wait_for()
            text = panel.inner_text()
            assert "Samaritans" in text
            assert "privately" not in text and "Talk to" not in text
            assert "Heron" not in text
            assert panel.get_by_role("button").all_inner_texts() == ["Close"]
    finally:
        node.run(host_client.close())


def test_the_peer_host_is_never_told_there_is_no_host(browser: Any, node: ServerThread) -> None:
    with sized(browser, 360, 740) as page:
        create_private_room(page, node)  # the browser started the room: its host
        composer(page)[0].press_sequentially(CRISIS, delay=10)
        panel = page.get_by_role("region", name="Support is here")
        panel.wait_for()
        assert "no host or moderator" not in panel.inner_text()
        page.get_by_role("button", name="Get help now").click()
        dialog = page.get_by_role("dialog", name="Support is here")
        assert "no host or moderator" not in dialog.inner_text()
        assert "privately" not in dialog.inner_text()


def test_a_session_offers_private_talk_only_with_the_verified_therapist(
    browser: Any, keyed_node: ServerThread
) -> None:
    server = keyed_node
    with sized(browser, 1280, 800) as host, sized(browser, 360, 740) as guest:
        link = console_session(host, server, lobby=False)
        join(guest, link, "Ana")
        composer(guest)[0].press_sequentially(CRISIS, delay=10)
        panel = guest.get_by_role("region", name="Support is here")
        panel.wait_for()
        offer = panel.get_by_role(
            "button", name="Talk privately with Dr. A. Rao (verified therapist)"
        )
        offer.wait_for()
        assert_in_view(guest, panel)
        # The therapist is never offered a private talk with themselves.
        host.get_by_text("Ana joined").wait_for()
        host.get_by_label("Message", exact=True).press_sequentially(CRISIS, delay=10)
        own = host.get_by_role("region", name="Support is here")
        own.wait_for()
        host.wait_for_timeout(300)
        assert "privately" not in own.inner_text()
