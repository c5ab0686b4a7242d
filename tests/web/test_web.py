"""The web page in a real Chromium against a real node: directory, private links, interop with
the Python client and the CLI, XSS, reconnection, layout, keyboard and accessibility."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from chatserver.client import ChatClient, Message, Room

from .conftest import AXE, ServerThread

XSS = "<img src=x onerror=alert(1)>"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'"
)


@dataclass
class Tab:
    page: Any
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def tab(
    browser: Any, width: int = 1280, height: int = 800, bypass_csp: bool = False
) -> Iterator[Tab]:
    """A fresh browser context (no shared storage) with every request and dialog recorded."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, bypass_csp=bypass_csp
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    t = Tab(page)
    page.on("request", lambda r: t.requests.append(r.url))
    page.on("websocket", lambda ws: t.requests.append(ws.url))
    page.on("pageerror", lambda e: t.errors.append(str(e)))

    def on_dialog(d: Any) -> None:
        t.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.set_default_timeout(15000)
    try:
        yield t
    finally:
        context.close()


def only_own_host(t: Tab, node: ServerThread) -> None:
    hosts = {urlsplit(u).netloc for u in t.requests if not u.startswith("data:")}
    assert hosts == {node.host}, hosts
    assert t.errors == []


def create_private_room(page: Any, node: ServerThread, title: str = "") -> str:
    """Create a private room in the browser, join it, and return the copied invite link."""
    page.goto(node.url + "/")
    page.get_by_label("Private: only people you send the link to").check()
    if title:
        page.get_by_label("Name (optional)").fill(title)
    page.get_by_role("button", name="Start the room").click()
    page.get_by_label("Your name here (optional)").fill("River")
    page.get_by_role("button", name="Join the room").click()
    page.get_by_role("button", name="Copy invite link").click()
    page.get_by_text("Link copied").wait_for()
    link: str = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(re.escape(node.url) + r"/r#[A-Za-z0-9_-]{43}", link), link
    return link


def join(page: Any, link: str, name: str) -> None:
    page.goto(link)
    page.get_by_label("Your name here (optional)").fill(name)
    page.get_by_role("button", name="Join the room").click()
    page.get_by_role("log", name="Messages").wait_for()
    page.get_by_text(f"You joined as {name}").wait_for()


def say(page: Any, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def own_messages(page: Any, text: str) -> Any:
    return page.locator(".msg.own").filter(has_text=text)


def messages(page: Any, text: str) -> Any:
    return page.locator(".msg:not(.own) .text", has_text=text)


def wait_sent(page: Any, text: str) -> None:
    own_messages(page, text).and_(page.locator("[data-state=sent]")).wait_for()


def no_horizontal_scroll(page: Any) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"horizontal scroll of {overflow}px"


def axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the current page (needs bypass_csp)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def python_join(url: str, link: str, name: str) -> tuple[ChatClient, Room]:
    client = ChatClient(url)
    await client.connect()
    return client, await client.join(link, nickname=name)


async def next_message(room: Room, timeout: float = 10) -> Message:
    async def first() -> Message:
        async for m in room.messages():
            if not m.own:
                return m
        raise AssertionError("room closed")

    import asyncio

    return await asyncio.wait_for(first(), timeout)


# --- directory --------------------------------------------------------------------------------


def test_directory_lists_a_room_created_by_the_python_client(
    browser: Any, node: ServerThread, artifacts: Path
) -> None:
    async def create() -> str:
        async with ChatClient(node.url) as c:
            created = await c.create_room(listed=True, topic="Sleepless nights")
            return created.room_id

    room_id = node.run(create())
    # The directory lists rooms someone is in: a Python client sits in this one.
    client, _ = node.run(python_join(node.url, f"{node.url}/r/{room_id}", "Willow"))
    for width, height in ((1280, 800), (360, 740)):
        with tab(browser, width, height) as t:
            response = t.page.goto(node.url + "/")
            headers = response.headers
            assert headers["content-security-policy"].startswith(CSP)
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert headers["referrer-policy"] == "no-referrer"
            assert headers["x-content-type-options"] == "nosniff"
            card = t.page.locator(".room-card", has_text="Sleepless nights")
            card.wait_for()
            assert "Peer support" in card.inner_text()
            assert "1 person here" in card.inner_text()
            assert card.get_by_role("link", name="Join Sleepless nights").get_attribute("href") == (
                f"/r/{room_id}"
            )
            no_horizontal_scroll(t.page)
            t.page.screenshot(path=str(artifacts / f"directory-{width}x{height}.png"))
            only_own_host(t, node)
    node.run(client.close())


def test_listed_room_join_from_directory_and_python_listener(
    browser: Any, node: ServerThread
) -> None:
    async def create() -> str:
        async with ChatClient(node.url) as c:
            return str((await c.create_room(listed=True, topic="grief")).link)

    link = node.run(create())
    client, room = node.run(python_join(node.url, link, "Willow"))
    with tab(browser) as t:
        t.page.goto(node.url + "/")
        t.page.get_by_role("link", name="Join grief").click()
        t.page.get_by_label("Your name here (optional)").fill("Juniper")
        t.page.get_by_role("button", name="Join the room").click()
        t.page.get_by_text("You joined as Juniper").wait_for()
        t.page.locator(".people", has_text="Willow").wait_for()
        say(t.page, "hello from the browser")
        wait_sent(t.page, "hello from the browser")
        got = node.run(next_message(room))
        assert (got.pseudonym, got.text) == ("Juniper", "hello from the browser")
        node.run(room.send("hello from python"))
        messages(t.page, "hello from python").wait_for()
        only_own_host(t, node)
    node.run(client.close())


# --- private rooms ------------------------------------------------------------------------------


def test_private_room_by_link_with_the_python_client_both_ways(
    browser: Any, node: ServerThread
) -> None:
    with tab(browser) as t:
        link = create_private_room(t.page, node, title="Evening check-in")
        # The secret never stays in the address bar.
        assert "#" not in t.page.url
        assert t.page.evaluate("location.hash") == ""
        t.page.get_by_role("heading", name="Evening check-in").wait_for()
        client, room = node.run(python_join(node.url, link, "Python"))
        assert room.title == "Evening check-in"
        t.page.get_by_text("Python joined.").wait_for()
        say(t.page, "hi python, it is the browser")
        got = node.run(next_message(room))
        assert got.text == "hi python, it is the browser"
        assert got.pseudonym == "River"
        node.run(room.send("hi browser, I hear you ✨"))
        messages(t.page, "hi browser, I hear you ✨").wait_for()
        # Both sides compute the same safety code.
        code = t.page.locator(".safety-code").inner_text()
        assert re.fullmatch(r"(\d{5} ){7}\d{5}", code)
        assert code == room.safety_code()
        only_own_host(t, node)
    node.run(client.close())


def test_browser_and_cli_say_listen(browser: Any, node: ServerThread) -> None:
    with tab(browser) as t:
        link = create_private_room(t.page, node)
        listen = subprocess.Popen(
            [sys.executable, "-m", "chatserver", "listen", link, "--count", "1", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            t.page.locator(".system", has_text="joined.").wait_for(timeout=20000)
            say(t.page, "for the listener")
            out, err = listen.communicate(timeout=30)
        finally:
            listen.kill()
        assert listen.returncode == 0, err
        line = json.loads(out.strip().splitlines()[-1])
        assert (line["pseudonym"], line["text"]) == ("River", "for the listener")
        said = subprocess.run(
            [sys.executable, "-m", "chatserver", "say", link, "from the command line"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert said.returncode == 0, said.stderr
        messages(t.page, "from the command line").wait_for()


def test_two_browsers_by_link_and_a_third_without_the_secret_is_refused(
    browser: Any, node: ServerThread, artifacts: Path
) -> None:
    with tab(browser) as a, tab(browser, 360, 740) as b, tab(browser) as c:
        link = create_private_room(a.page, node)
        join(b.page, link, "Maple")
        a.page.get_by_text("Maple joined.").wait_for()
        say(a.page, "welcome, Maple")
        messages(b.page, "welcome, Maple").wait_for()
        say(b.page, "thank you, River")
        messages(a.page, "thank you, River").wait_for()
        wait_sent(b.page, "thank you, River")
        # Typing shows for the others.
        a.page.get_by_label("Message", exact=True).press_sequentially("writ")
        b.page.get_by_text("River is typing…").wait_for()
        # A third person with only the room id (no secret) cannot get in.
        assert a.page.evaluate("location.pathname") == "/r"  # the id is not even shown
        secret_room_id = _room_id_of(link)
        c.page.goto(f"{node.url}/r/{secret_room_id}")
        c.page.get_by_role("button", name="Join the room").click()
        c.page.get_by_role("alert").filter(has_text="This room is private").wait_for()
        assert c.page.locator(".log").count() == 0
        b.page.screenshot(path=str(artifacts / "room-360x740.png"))
        a.page.screenshot(path=str(artifacts / "room-1280x800.png"))
        for t in (a, b, c):
            only_own_host(t, node)


def _room_id_of(link: str) -> str:
    from chatserver.links import parse_link

    return parse_link(link).room_id


def test_xss_message_stays_text(browser: Any, node: ServerThread) -> None:
    with tab(browser) as a, tab(browser) as b:
        link = create_private_room(a.page, node)
        join(b.page, link, "Maple")
        say(a.page, XSS)
        wait_sent(a.page, XSS)
        text = messages(b.page, XSS)
        text.wait_for()
        assert text.inner_text() == XSS
        b.page.wait_for_timeout(300)
        for t in (a, b):
            assert t.page.locator(".log img").count() == 0
            assert t.page.locator("img").count() == 0
            assert t.dialogs == []
        # Pseudonyms are text too.
        b.page.get_by_label("Change your name").fill("<b>x</b>")
        b.page.get_by_role("button", name="Change").click()
        b.page.get_by_role("alert").or_(b.page.get_by_text("You are now")).first.wait_for()
        assert b.page.locator(".people b").count() == 0


# --- reconnection -----------------------------------------------------------------------------


def test_reconnect_resumes_without_duplicates_and_sends_what_waited(
    browser: Any, node: ServerThread
) -> None:
    with tab(browser) as a, tab(browser) as b:
        link = create_private_room(b.page, node)
        before = node.sids()
        join(a.page, link, "Maple")
        (sid,) = node.sids() - before
        say(a.page, "before the drop")
        messages(b.page, "before the drop").wait_for()
        wait_sent(a.page, "before the drop")

        # Hold reconnection attempts back so a message is written while really offline.
        allow = {"on": False}

        def gate(ws: Any) -> None:
            if allow["on"]:
                ws.connect_to_server()
            else:
                ws.close()

        a.page.route_web_socket(re.compile(r".*/socket\.io/.*"), gate)
        node.disconnect(sid)
        a.page.get_by_text("Connection lost").wait_for()
        say(a.page, "written while offline")
        own_messages(a.page, "written while offline").and_(
            a.page.locator("[data-state=pending]")
        ).wait_for()
        say(b.page, "sent while Maple was away")
        allow["on"] = True
        wait_sent(a.page, "written while offline")
        messages(b.page, "written while offline").wait_for()
        messages(a.page, "sent while Maple was away").wait_for()
        a.page.wait_for_timeout(500)
        for text in ("before the drop", "written while offline"):
            assert own_messages(a.page, text).count() == 1
            assert messages(b.page, text).count() == 1
        assert messages(a.page, "sent while Maple was away").count() == 1
        assert b.page.get_by_text("Maple left").count() == 0  # the seat was resumed
        seqs = a.page.eval_on_selector_all(".log [data-seq]", "els => els.map(e => e.dataset.seq)")
        assert len(seqs) == len(set(seqs))


# --- layout, keyboard and accessibility ----------------------------------------------------------


def test_keyboard_only_flow(browser: Any, node: ServerThread) -> None:
    with tab(browser) as t:
        page = t.page
        page.goto(node.url + "/")
        page.locator(".rooms-status, #rooms-status").wait_for()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"

        def tab_to(selector: str, limit: int = 30, text: str | None = None) -> None:
            check = f"document.activeElement.matches({json.dumps(selector)})"
            if text is not None:
                check += f" && document.activeElement.textContent === {json.dumps(text)}"
            for _ in range(limit):
                page.keyboard.press("Tab")
                if page.evaluate(check):
                    return
            raise AssertionError(f"could not reach {selector} with Tab")

        tab_to("#vis-listed")
        page.keyboard.press("ArrowDown")  # the radio group: arrows choose
        assert page.evaluate("document.getElementById('vis-private').checked")
        tab_to("button[type=submit]")
        page.keyboard.press("Enter")
        nick = page.get_by_label("Your name here (optional)")
        nick.wait_for()
        assert page.evaluate("document.activeElement.name") == "nickname"
        page.keyboard.type("Keys")
        page.keyboard.press("Enter")
        page.get_by_text("You joined as Keys").wait_for()
        assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"
        page.keyboard.type("typed without a mouse")
        page.keyboard.press("Enter")
        wait_sent(page, "typed without a mouse")
        tab_to("button", 40, text="Leave")
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Open rooms").wait_for()


@pytest.mark.parametrize(("width", "height"), [(360, 740), (1280, 800)])
def test_layout_and_accessibility(
    browser: Any, node: ServerThread, width: int, height: int, artifacts: Path
) -> None:
    async def create() -> str:
        async with ChatClient(node.url) as c:
            return str((await c.create_room(listed=True, topic="anxiety at work")).link)

    client, _ = node.run(python_join(node.url, node.run(create()), "Willow"))  # listed: not empty
    with tab(browser, width, height, bypass_csp=True) as t:
        page = t.page
        page.goto(node.url + "/")
        page.locator(".room-card").wait_for()
        no_horizontal_scroll(page)
        assert axe(page) == []
        labelled(page)
        page.get_by_role("link", name="Join anxiety at work").click()
        page.get_by_role("button", name="Join the room").click()
        page.get_by_role("log", name="Messages").wait_for()
        say(page, "a fairly long message " * 12 + "https://example.invalid/" + "x" * 80)
        wait_sent(page, "a fairly long message")
        no_horizontal_scroll(page)
        live = page.locator("[role=log][aria-live=polite]")
        assert live.count() == 1
        labelled(page)
        assert axe(page) == []
        if width < 500:
            toggle = page.get_by_role("button", name="About this room")
            toggle.click()
            assert toggle.get_attribute("aria-expanded") == "true"
            no_horizontal_scroll(page)
        page.get_by_role("heading", name="How your messages are protected").wait_for()
        assert "copy" in page.locator("#copy-notice").inner_text()
        page.screenshot(path=str(artifacts / f"room-listed-{width}x{height}.png"))
    node.run(client.close())


def labelled(page: Any) -> None:
    """Every visible form control has an accessible label."""
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, textarea, select')]
            .filter(el => el.type !== 'hidden')
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map(el => el.outerHTML)"""
    )
    assert unlabelled == []


def test_static_assets_are_served_from_static(node: ServerThread) -> None:
    import urllib.request

    with urllib.request.urlopen(node.url + "/r/AAAAAAAAAAAAAAAAAAAAAA") as r:
        html = r.read().decode()
    assert re.search(r'src="/static/app\.[A-Z2-7]{8}\.js"', html)
    assert "<script>" not in html
    assert "style=" not in html
