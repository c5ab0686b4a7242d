"""The room's app shell, in a real Chromium at a phone's (360x740) and a desktop's (1280x800) size,
asserting what a person sees (bounding boxes in the window): a compact header; the conversation
filling the space between the header and the composer, scrolling inside while the page itself does
not; Leave quickly clear of the composer; "About this room" and the host tools as sheets on a
phone (Escape closes, focus goes back); no jump on join; a session timer that agrees with the end
time it shows; styled selects; axe clean in light and dark."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import ServerThread
from .test_console_controls import console_session, python_host
from .test_help_and_exit import assert_in_view, box_of, composer, header_bottom, overlaps
from .test_web import AXE, create_private_room, join, say, wait_sent

SIZES = [(360, 740), (1280, 800)]
PHONE = (360, 740)

# Records where the room's title and message box are in the first frame the room is painted.
FIRST_PAINT = """
(() => {
  const seen = () => {
    const title = document.querySelector('main .room-head h1');
    const box = document.querySelector('main .composer textarea');
    if (!title || !box || window.__firstRoom) return;
    const at = () => ({ title: title.getBoundingClientRect().toJSON(),
                        box: box.getBoundingClientRect().toJSON(), scrollY: window.scrollY });
    window.__firstRoom = at();
    requestAnimationFrame(() => { window.__firstFrame = at(); });
  };
  new MutationObserver(seen).observe(document, { childList: true, subtree: true });
})();
"""


@pytest.fixture
def chatty_node(web_dist: Path) -> Iterator[ServerThread]:
    """A node whose rate limit lets one person send 40 messages in a row."""
    server = ServerThread(msg_rate_per_s=200.0, msg_burst=200).start()
    yield server
    server.stop()


@contextmanager
def sized(
    browser: Any, width: int, height: int, scheme: str = "light", csp: bool = False
) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": width, "height": height},
        locale="en-GB",
        timezone_id="Europe/London",
        color_scheme=scheme,
        bypass_csp=csp,
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.add_init_script(FIRST_PAINT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(15000)
    try:
        yield page
        assert errors == []
    finally:
        context.close()


def title(page: Any) -> Any:
    return page.locator("main .room-head h1")


def page_does_not_scroll(page: Any) -> None:
    sizes = page.evaluate(
        "[document.scrollingElement.scrollHeight, innerHeight,"
        " document.scrollingElement.scrollWidth, innerWidth]"
    )
    assert sizes[0] <= sizes[1] + 1, f"the page scrolls: {sizes[0]} > {sizes[1]}"
    assert sizes[2] <= sizes[3] + 1, f"the page scrolls sideways: {sizes[2]} > {sizes[3]}"
    page.evaluate("window.scrollTo(0, 100000)")
    assert page.evaluate("window.scrollY") == 0


def axe_violations(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def focus_in(page: Any, selector: str) -> bool:
    return bool(page.evaluate(f"!!document.activeElement?.closest({selector!r})"))


# --- the header ---------------------------------------------------------------------------------


def test_the_header_is_compact_on_a_phone(browser: Any, chatty_node: ServerThread) -> None:
    with sized(browser, *PHONE) as page:
        page.goto(chatty_node.url + "/")
        page.get_by_role("button", name="Leave quickly").wait_for()
        directory = page.evaluate("document.querySelector('header.site').offsetHeight")
        create_private_room(page, chatty_node, title="Evening check-in")
        height = page.evaluate("document.querySelector('header.site').offsetHeight")
        print(f"\nheader at 360 px wide: {height} px in a room, {directory} px on the directory")
        assert height <= 64, height
        assert directory <= 80, directory  # the directory adds Therapist sign-in: two rows at most
        head = box_of(page.locator("header.site"))
        for name in ("Get help now", "Leave quickly"):
            b = box_of(page.get_by_role("button", name=name))
            assert b["height"] <= 44, (name, b)  # one line of text, no wrapping
            assert b["y"] >= head["y"] and b["y"] + b["height"] <= head["y"] + head["height"]
        brand = box_of(page.get_by_role("link", name="Peer support rooms"))
        assert brand["height"] <= 2 * 24 + 1, brand  # two lines at most
        # The connection line hangs below the header: the header does not grow when it shows.
        page.evaluate(
            "document.getElementById('conn').textContent = 'Connection lost. Reconnecting…'"
        )
        assert page.evaluate("document.querySelector('header.site').offsetHeight") == height


# --- the conversation fills the screen ----------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_log_scrolls_not_the_page_and_the_composer_stays_in_view(
    browser: Any, chatty_node: ServerThread, width: int, height: int, artifacts: Path
) -> None:
    with sized(browser, width, height) as page:
        create_private_room(page, chatty_node, title="Evening check-in")
        for i in range(40):
            say(page, f"message number {i} " + "with a few more words in it " * 2)
        wait_sent(page, "message number 39 ")
        page.get_by_role("button", name="Not now").click()  # the check-in on joining
        box, send = composer(page)
        log = page.get_by_role("log", name="Messages")
        assert log.evaluate("el => el.scrollHeight > el.clientHeight + 100")
        page_does_not_scroll(page)
        for el in (box, send, title(page)):
            assert_in_view(page, el)
        # The newest message is on screen, above the composer.
        newest = page.locator(".msg.own", has_text="message number 39 ")
        assert_in_view(page, newest)
        assert box_of(newest)["y"] + box_of(newest)["height"] <= box_of(box)["y"] + 0.5
        # The composer is at the bottom of the window.
        b = box_of(box)
        assert height - (b["y"] + b["height"]) <= 40, b
        # The log takes most of the height (not a fixed 60 %).
        lb = box_of(log)
        print(
            f"\n{width}x{height}: log {lb['height']:.0f} px tall, composer bottom {b['y'] + b['height']:.0f}"
        )
        assert lb["height"] >= 0.3 * height, lb
        # Leave quickly never covers the message box or Send.
        leave = box_of(page.get_by_role("button", name="Leave quickly"))
        assert not overlaps(leave, box_of(box)) and not overlaps(leave, box_of(send))
        # Scrolling the log moves messages, not the title, the header or the composer.
        before = box_of(title(page)), box_of(box), header_bottom(page)
        log.evaluate("el => { el.scrollTop = 0 }")
        page.mouse.wheel(0, -2000)
        assert (box_of(title(page)), box_of(box), header_bottom(page)) == before
        page.screenshot(path=str(artifacts / f"layout-room-{width}x{height}.png"))


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_no_jump_on_join(browser: Any, chatty_node: ServerThread, width: int, height: int) -> None:
    with sized(browser, width, height) as page:
        create_private_room(page, chatty_node, title="Evening check-in")
        first = page.evaluate("window.__firstFrame || window.__firstRoom")
        assert first is not None
        page.wait_for_timeout(1000)
        now_title, now_box = box_of(title(page)), box_of(composer(page)[0])
        assert first["scrollY"] == 0 and page.evaluate("window.scrollY") == 0
        assert abs(first["title"]["y"] - now_title["y"]) < 1, (first["title"], now_title)
        assert abs(first["title"]["x"] - now_title["x"]) < 1, (first["title"], now_title)
        assert abs(first["box"]["y"] - now_box["y"]) < 1, (first["box"], now_box)
        assert_in_view(page, title(page))


# --- panels as sheets on a phone ----------------------------------------------------------------


def test_about_this_room_is_a_sheet_on_a_phone(browser: Any, chatty_node: ServerThread) -> None:
    with sized(browser, *PHONE) as page:
        create_private_room(page, chatty_node)
        box, send = composer(page)
        before = box_of(box)
        side = page.get_by_role("complementary", name="About this room")
        assert side.is_hidden()
        toggle = page.get_by_role("button", name="About this room")
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        side.wait_for()
        assert_in_view(page, side)  # inside the window, under the header
        assert focus_in(page, "#room-side")  # focus moved in
        # An overlay: the conversation and the composer stay where they were, not pushed down.
        assert box_of(box) == before
        assert not overlaps(box_of(side), box_of(box)) and not overlaps(box_of(side), box_of(send))
        assert side.evaluate("el => getComputedStyle(el).position") == "fixed"
        page_does_not_scroll(page)
        # Escape closes it and gives focus back to the toggle.
        page.keyboard.press("Escape")
        side.wait_for(state="hidden")
        assert toggle.get_attribute("aria-expanded") == "false"
        assert page.evaluate("document.activeElement?.textContent") == "About this room"
        # So does its Close button.
        toggle.click()
        side.get_by_role("button", name="Close").click()
        side.wait_for(state="hidden")
        assert page.evaluate("document.activeElement?.textContent") == "About this room"
        # And a tap on the conversation.
        toggle.click()
        side.wait_for()
        box.click()
        side.wait_for(state="hidden")


def test_about_this_room_is_a_side_column_on_a_desktop(
    browser: Any, chatty_node: ServerThread
) -> None:
    with sized(browser, 1280, 800) as page:
        create_private_room(page, chatty_node)
        side = page.get_by_role("complementary", name="About this room")
        assert side.is_visible()
        assert page.get_by_role("button", name="About this room").is_hidden()
        chat = box_of(page.locator(".chat"))
        s = box_of(side)
        assert s["x"] >= chat["x"] + chat["width"] - 0.5  # to the right of the conversation
        assert_in_view(page, side)
        page_does_not_scroll(page)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_host_toolbar_is_collapsed_on_a_phone(
    browser: Any, keyed_node: ServerThread, width: int, height: int
) -> None:
    with sized(browser, width, height) as page:
        console_session(page, keyed_node, lobby=False, duration_min=30)
        pin = page.get_by_role("button", name="Pin a message")
        toggle = page.get_by_role("button", name="Host tools")
        box, send = composer(page)
        if width >= 900:
            assert toggle.is_hidden()
            assert pin.is_visible()
            assert_in_view(page, pin)
            page_does_not_scroll(page)
            return
        # The first screen shows the conversation: one button instead of the toolbar.
        assert pin.is_hidden()
        assert toggle.get_attribute("aria-expanded") == "false"
        assert_in_view(page, toggle)
        page.get_by_role("button", name="Not now").click()  # the check-in on joining
        log = box_of(page.get_by_role("log", name="Messages"))
        assert log["height"] >= 0.3 * height, log
        for el in (title(page), box, send):
            assert_in_view(page, el)
        page_does_not_scroll(page)
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        pin.wait_for()
        assert_in_view(page, pin)
        assert focus_in(page, ".tools-items")
        for name in ("End session", "Extend 15 min", "Edit ground rules"):
            assert_in_view(page, page.get_by_role("button", name=name))
        assert_in_view(page, page.get_by_label("Slow mode"))
        page.keyboard.press("Escape")
        pin.wait_for(state="hidden")
        assert toggle.get_attribute("aria-expanded") == "false"
        assert page.evaluate("document.activeElement?.textContent") == "Host tools"
        # A control used from the sheet works: pinning a message.
        toggle.click()
        pin.click()
        page.get_by_label("Message to pin").fill("Welcome. Take your time.")
        page.get_by_role("button", name="Pin it").click()
        page.locator(".pinned", has_text="Welcome. Take your time.").wait_for()
        page.keyboard.press("Escape")
        pin.wait_for(state="hidden")
        page_does_not_scroll(page)


# --- the session timer --------------------------------------------------------------------------


def test_the_session_timer_and_end_time_agree(browser: Any, keyed_node: ServerThread) -> None:
    server = keyed_node
    with (
        python_host(server, lobby=False, duration_s=1800) as (created, _host_room),
        sized(browser, *PHONE) as page,
    ):
        join(page, str(created.link), "Ana")
        timer = page.get_by_role("timer")
        timer.wait_for()
        page.wait_for_function(
            "/Time left: \\d+:\\d\\d/.test(document.querySelector('[role=timer]').textContent)"
        )
        text = timer.inner_text()
        now = datetime.fromtimestamp(page.evaluate("Date.now()") / 1000)
        m = re.fullmatch(r"Time left: (\d+):(\d\d), until (\d{1,2}):(\d\d)", text)
        assert m, text
        left = timedelta(minutes=int(m[1]), seconds=int(m[2]))
        assert timedelta(minutes=29) < left <= timedelta(minutes=30), text
        # The countdown runs to the very time it names.
        until = now.replace(hour=int(m[3]), minute=int(m[4]), second=0, microsecond=0)
        assert abs((now + left) - until) < timedelta(minutes=1), (text, now)
        # The automatic end is later by the grace it states, never a second, different end.
        ends = page.locator(".ends-at").inner_text()
        e = re.fullmatch(
            r"Ends automatically at (\d{1,2}):(\d\d) if still open \((\d+) min grace\)\.",
            ends,
        )
        assert e, ends
        auto = now.replace(hour=int(e[1]), minute=int(e[2]), second=0, microsecond=0)
        if auto < until:
            auto += timedelta(days=1)
        assert abs(auto - until - timedelta(minutes=int(e[3]))) <= timedelta(minutes=1), (
            text,
            ends,
        )
        assert_in_view(page, timer)


# --- styled selects, contrast in light and dark -------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_selects_are_styled_and_axe_stays_clean_in_light_and_dark(
    browser: Any, keyed_node: ServerThread, scheme: str
) -> None:
    with sized(browser, *PHONE, scheme=scheme, csp=True) as page:
        console_session(page, keyed_node, lobby=False, duration_min=30)
        assert axe_violations(page) == []
        page.get_by_role("button", name="Host tools").click()
        select = page.get_by_label("Slow mode")
        select.wait_for()
        style = select.evaluate(
            """el => { const s = getComputedStyle(el), t = getComputedStyle(document.querySelector('.composer textarea'));
                return { appearance: s.appearance, border: s.borderTopColor, radius: s.borderTopLeftRadius,
                         bg: s.backgroundColor, tborder: t.borderTopColor, tradius: t.borderTopLeftRadius, tbg: t.backgroundColor }; }"""
        )
        assert style["appearance"] == "none", style
        assert (style["border"], style["radius"], style["bg"]) == (
            style["tborder"],
            style["tradius"],
            style["tbg"],
        ), style
        assert axe_violations(page) == []
        page.keyboard.press("Escape")
        page.get_by_role("button", name="About this room").click()
        page.get_by_role("complementary", name="About this room").wait_for()
        assert axe_violations(page) == []
