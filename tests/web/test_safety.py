"""Safety features in a real Chromium against a real node: crisis signposting from a draft, content
warnings, silent block, quick exit, and the operator's resources route."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .conftest import ServerThread
from .test_web import create_private_room, python_join, say, wait_sent

NEUTRAL = "https://neutral.example/weather"


@contextmanager
def page_in(browser: Any, locale: str = "en-GB", timezone: str = "Europe/London") -> Iterator[Any]:
    """A fresh context with a language and time zone; the neutral site is answered locally."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale=locale, timezone_id=timezone
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.route(
        "https://neutral.example/**",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<title>Weather</title><p>Sunny</p>"
        ),
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(15000)
    try:
        yield page
        assert errors == []
    finally:
        context.close()


@pytest.fixture
def exit_node(web_dist: Path) -> Iterator[ServerThread]:
    server = ServerThread(exit_url=NEUTRAL).start()
    yield server
    server.stop()


def test_resources_route_serves_the_built_in_list_and_exit_url(exit_node: ServerThread) -> None:
    with urllib.request.urlopen(exit_node.url + "/resources.json") as r:
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.headers["Cache-Control"] == "no-store"
        body = json.load(r)
    assert body["exit_url"] == NEUTRAL
    assert any(line["name"] == "Samaritans" for line in body["resources"])
    assert body["directory"]["url"].startswith("https://")


def test_crisis_phrase_in_a_draft_offers_help_with_local_lines(
    browser: Any, node: ServerThread
) -> None:
    with page_in(browser, "en-GB", "Europe/London") as page:
        create_private_room(page, node)
        panel = page.locator("#help-panel")
        assert panel.is_hidden()
        box = page.get_by_label("Message", exact=True)
        box.fill("honestly I feel like I want to end it all tonight")
        panel.wait_for(state="visible")
        assert panel.get_attribute("data-reason") == "draft"
        text = panel.inner_text()
        assert "Samaritans" in text and "116 123" in text
        assert "Find a Helpline" in text
        # The browser started this peer room: it is never told there is no host, and nobody
        # (a peer who happened to start a room is no counsellor) is offered for a private talk.
        assert "no host or moderator" not in text
        assert "privately" not in text
        # Next to the message box, announced, and the person keeps typing.
        assert panel.get_attribute("role") == "region"
        assert page.evaluate("document.activeElement?.tagName") == "TEXTAREA"
        # Help never blocks sending.
        box.press("Enter")
        wait_sent(page, "end it all tonight")
        panel.get_by_role("button", name="Close").click()
        assert panel.is_hidden()


def test_lines_follow_language_and_time_zone_not_the_address(
    browser: Any, node: ServerThread
) -> None:
    with page_in(browser, "de", "Europe/Berlin") as page:
        page.goto(node.url + "/")
        page.get_by_role("button", name="Get help now").click()
        panel = page.get_by_role("dialog", name="Support is here")
        panel.get_by_text("TelefonSeelsorge").wait_for()
        assert "Samaritans" not in panel.inner_text()


def test_content_warning_arrives_collapsed_and_opens_on_click(
    browser: Any, node: ServerThread
) -> None:
    with page_in(browser) as page:
        link = create_private_room(page, node)
        client, room = node.run(python_join(node.url, link, "Willow"))
        try:
            page.locator(".people", has_text="Willow").wait_for()
            node.run(room.send("a heavy day, details inside", cw="self-harm"))
            msg = page.locator(".msg:not(.own)", has_text="Content warning: self-harm")
            msg.wait_for()
            details = msg.locator("details.cw")
            assert details.get_attribute("open") is None
            assert not msg.locator(".text").is_visible()
            msg.locator("summary").click()
            msg.locator(".text", has_text="a heavy day, details inside").wait_for(state="visible")
            # And the browser can send one: the Python client receives the label inside the body.
            page.get_by_role("button", name="Add a content warning").click()
            page.get_by_label("Content warning for your next message").fill("grief")
            say(page, "my dad died last year")
            wait_sent(page, "my dad died last year")
            assert page.locator(".msg.own .cw-label", has_text="grief").count() == 1

            async def got() -> Any:
                async for m in room.messages():
                    if not m.own and m.text == "my dad died last year":
                        return m
                return None

            received = node.run(got())
            assert received is not None and received.body.get("cw") == "grief"
        finally:
            node.run(client.close())


def test_blocked_member_never_renders_and_typing_is_hidden(
    browser: Any, node: ServerThread
) -> None:
    with page_in(browser) as page:
        link = create_private_room(page, node)
        ash_client, ash = node.run(python_join(node.url, link, "Ash"))
        birch_client, birch = node.run(python_join(node.url, link, "Birch"))
        try:
            page.locator(".people", has_text="Birch").wait_for()
            node.run(ash.send("before the block"))
            page.locator(".msg .text", has_text="before the block").wait_for()
            page.get_by_role("button", name="Block Ash").click()
            assert page.locator(".msg .text", has_text="before the block").count() == 0
            page.get_by_role("button", name="Unblock Ash").wait_for()
            node.run(ash.typing(True))
            node.run(ash.send("after the block"))
            node.run(birch.typing(True))
            page.locator(".typing", has_text="Birch is typing").wait_for()
            node.run(birch.send("still here"))
            page.locator(".msg .text", has_text="still here").wait_for()
            assert "Ash" not in page.locator(".typing").inner_text()
            assert page.locator(".msg", has_text="after the block").count() == 0
            assert page.locator("text=hidden").count() == 0  # no stub of any kind
            # The room still works both ways: Ash still reads what the browser writes.
            say(page, "hello everyone")

            async def ash_reads() -> str:
                async for m in ash.messages():
                    if not m.own and m.text == "hello everyone":
                        return m.text
                return ""

            assert node.run(ash_reads()) == "hello everyone"
        finally:
            node.run(ash_client.close())
            node.run(birch_client.close())


@pytest.mark.parametrize("how", ["button", "triple-shift"])
def test_quick_exit_lands_on_the_neutral_page_and_back_does_not_return(
    browser: Any, exit_node: ServerThread, how: str
) -> None:
    with page_in(browser) as page:
        create_private_room(page, exit_node)
        room_url = page.url
        page.evaluate("sessionStorage.setItem('marker', 'x')")
        page.locator(".msg, .system").first.wait_for()
        if how == "button":
            page.get_by_role("button", name="Leave quickly").click()
        else:
            page.get_by_label("Message", exact=True).focus()
            for _ in range(3):
                page.keyboard.press("Shift")
        page.wait_for_url(NEUTRAL)
        assert page.title() == "Weather"
        page.go_back()
        page.wait_for_load_state()
        # One history entry for the whole visit, replaced by the exit: Back leaves the site.
        assert page.url != room_url
        assert not page.url.startswith(exit_node.url)
        assert page.get_by_role("log", name="Messages").count() == 0
        # This tab's storage for the site is empty (read on a page of the site that runs nothing).
        page.goto(exit_node.url + "/resources.json")
        assert page.evaluate("sessionStorage.getItem('marker')") is None
        assert page.evaluate("[sessionStorage.length, localStorage.length]") == [0, 0]


def test_operator_resources_file_replaces_the_built_in_list(tmp_path: Path, web_dist: Path) -> None:
    custom = {
        "resources": [{"name": "Campus line", "countries": ["*"], "phone": "123"}],
        "exit_url": "https://example.org/",
    }
    path = tmp_path / "resources.json"
    path.write_text(json.dumps(custom))
    server = ServerThread(resources_file=str(path)).start()
    try:
        with urllib.request.urlopen(server.url + "/resources.json") as r:
            body = json.load(r)
        assert body["resources"][0]["name"] == "Campus line"
        assert body["exit_url"] == "https://example.org/"
    finally:
        server.stop()
    path.write_text('{"resources": [{"name": "x", "countries": ["nowhere"]}]}')
    with pytest.raises(ValueError, match="RESOURCES_FILE"):
        ServerThread(resources_file=str(path)).start()


def test_disappearing_messages_are_announced_and_leave_every_screen(
    browser: Any, node: ServerThread
) -> None:
    with page_in(browser) as page:
        page.clock.install()
        page.goto(node.url + "/")
        page.get_by_label("Private: only people you send the link to").check()
        page.get_by_label("Messages disappear").select_option("300")
        page.get_by_role("button", name="Start the room").click()
        page.get_by_label("Your name here (optional)").fill("River")
        page.get_by_role("button", name="Join the room").click()
        notice = page.locator("#copy-notice")
        notice.wait_for()
        assert "disappear 5 minutes after they are sent" in notice.inner_text()
        say(page, "this will not stay")
        wait_sent(page, "this will not stay")
        message = page.locator(".msg.own").filter(has_text="this will not stay")
        assert message.get_attribute("data-disappears") == "1"
        page.clock.run_for(5 * 60 * 1000 + 1000)
        message.wait_for(state="detached")
