"""The join page names the room before joining (a listed room's topic, a private room's title
opened with the link's key, a session's therapist once the badge verifies) and says plainly when
the room is gone; the directory never lists an empty room; Back after leaving a private room
never shows a link error; the therapist console is a chunk a participant's first load never
fetches."""

from __future__ import annotations

import base64
from typing import Any

from chatserver import e2ee
from chatserver.client import ChatClient
from chatserver.protocol.ids import b64id

from .conftest import ServerThread, built
from .test_console_controls import console_session
from .test_help_and_exit import START, sized
from .test_web import create_private_room, join, python_join, tab

LINK_ERROR = "This link does not work"


def test_a_listed_room_is_named_and_only_listed_while_someone_is_in_it(
    browser: Any, node: ServerThread
) -> None:
    async def create() -> tuple[ChatClient, str]:
        c = ChatClient(node.url)
        await c.connect()
        created = await c.create_room(listed=True, topic="Sleepless nights")
        return c, str(created.link)

    creator, link = node.run(create())
    with tab(browser, 360, 740) as t:
        page = t.page
        page.goto(node.url + "/")
        page.get_by_text("No rooms are open right now").wait_for()  # created, but empty
        client, _ = node.run(python_join(node.url, link, "Willow"))
        page.get_by_role("button", name="Refresh").click()
        card = page.locator(".room-card", has_text="Sleepless nights")
        card.wait_for()
        assert "1 person here" in card.inner_text()
        assert "0 people here" not in page.inner_text("main")
        card.get_by_role("link", name="Join Sleepless nights").click()
        page.get_by_role("heading", name="Join “Sleepless nights”").wait_for()
        page.locator(".room-about", has_text="Peer support").wait_for()
        # Everyone leaves: the directory no longer lists the room.
        node.run(client.close())
        page.get_by_role("link", name="Back").click()
        page.get_by_text("No rooms are open right now").wait_for()
        assert page.locator(".room-card").count() == 0
        assert t.errors == []
    node.run(creator.close())


def test_a_private_room_is_named_by_its_encrypted_title(browser: Any, node: ServerThread) -> None:
    with sized(browser, 1280, 800) as host, sized(browser, 360, 740) as guest:
        link = create_private_room(host, node, title="Tuesday circle")
        guest.goto(link)
        guest.get_by_role("heading", name="You have been invited to “Tuesday circle”").wait_for()
        guest.locator(".room-about", has_text="Private room").wait_for()
        guest.get_by_label("Your name here (optional)").fill("Ash")
        guest.get_by_role("button", name="Join the room").click()
        guest.get_by_text("You joined as Ash").wait_for()


def test_a_session_names_its_verified_therapist_before_joining(
    browser: Any, keyed_node: ServerThread
) -> None:
    with tab(browser) as host_tab, tab(browser, 360, 740) as guest_tab:
        link = console_session(host_tab.page, keyed_node)  # private, titled "Thursday group"
        page = guest_tab.page
        page.goto(link)
        page.get_by_role("heading", name="You have been invited to “Thursday group”").wait_for()
        about = page.locator(".room-about")
        about.get_by_text("Session with a therapist").wait_for()
        about.get_by_text("With Dr. A. Rao (verified therapist)").wait_for()
        assert host_tab.errors == [] and guest_tab.errors == []


def test_a_room_that_is_gone_says_so_with_a_way_back(browser: Any, node: ServerThread) -> None:
    unknown_listed = f"{node.url}/r/{b64id(bytes(range(16)))}"
    secret = base64.urlsafe_b64encode(e2ee.new_room_secret().secret).rstrip(b"=").decode()
    unknown_private = f"{node.url}/r#{secret}"
    with tab(browser, 360, 740) as t:
        for link in (unknown_listed, unknown_private):
            t.page.goto(link)
            t.page.get_by_role("heading", name="This room is not open").wait_for()
            assert t.page.get_by_role("button", name="Join the room").count() == 0
            t.page.get_by_role("link", name="See open rooms").click()
            t.page.get_by_role("heading", name="Open rooms").wait_for()
        assert t.errors == []


def test_back_after_leaving_a_private_room_shows_no_link_error(
    browser: Any, node: ServerThread
) -> None:
    with sized(browser, 1280, 800) as host:
        link = create_private_room(host, node)
        # Arriving by the link; then the link again while in the room (a same-page move, which
        # the browser records as a second entry): leave, and Back.
        with sized(browser, 360, 740) as page:
            page.goto(START)
            join(page, link, "Ash")
            page.evaluate("l => { location.href = l }", link)
            page.get_by_role("button", name="Join the room").click()
            page.get_by_role("log", name="Messages").wait_for()
            page.get_by_role("button", name="Leave", exact=True).click()
            page.get_by_role("heading", name="Open rooms").wait_for()
            page.go_back()
            page.wait_for_timeout(500)
            assert page.url == START or LINK_ERROR not in page.inner_text("body")
            if page.url != START:
                page.get_by_role("heading", name="Open rooms").wait_for()
                page.go_back()
                page.wait_for_timeout(500)
            assert page.url == START
        # Started in the page, left, Back leaves the site; Forward shows no link error either.
        with sized(browser, 1280, 800) as page:
            page.goto(START)
            create_private_room(page, node)
            page.get_by_role("button", name="Leave", exact=True).click()
            page.get_by_role("heading", name="Open rooms").wait_for()
            page.go_back()
            page.wait_for_load_state()
            assert page.url == START
            page.go_forward()
            page.get_by_role("heading", name="Open rooms").wait_for()
            assert LINK_ERROR not in page.inner_text("body")


def test_a_bare_private_address_typed_in_still_explains_the_missing_secret(
    browser: Any, node: ServerThread
) -> None:
    with tab(browser) as t:
        t.page.goto(node.url + "/r")
        t.page.get_by_role("heading", name=LINK_ERROR).wait_for()


def test_the_console_is_a_chunk_only_the_console_fetches(
    browser: Any, keyed_node: ServerThread
) -> None:
    chunk = built("console.js")
    with tab(browser, 360, 740) as t:
        page = t.page
        page.goto(keyed_node.url + "/")
        page.get_by_role("heading", name="Open rooms").wait_for()
        page.wait_for_load_state("networkidle")
        assert not any(chunk in url for url in t.requests), t.requests
        assert any(built("app.js") in url for url in t.requests)
        page.get_by_role("link", name="Therapist sign-in").click()
        page.get_by_label("Your credential").wait_for()
        assert any(chunk in url for url in t.requests)
    with tab(browser) as t:  # opened directly
        t.page.goto(keyed_node.url + "/?console")
        t.page.get_by_label("Your credential").wait_for()
        assert any(chunk in url for url in t.requests)
        assert t.errors == []
