"""The therapist inside the session (issue 15, item 3), in a real Chromium against a real node: the
verified badge with the credential's name on the therapist's messages and in the member list,
checked by the participant's browser as the waiting room does; still so after the therapist
reloads (the same seat, nobody sees them leave); no Block button on session staff (Report
instead); and a member who takes the therapist's name gets no badge: the badge follows the signed
sender of a message, never a name."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chatserver.client import MemberJoined, MemberLeft

from .conftest import ServerThread
from .test_console_controls import console_session, python_member
from .test_reload import Recorder
from .test_web import join, messages, say, tab, wait_sent

THERAPIST = "Dr. A. Rao"  # the name conftest.issue() puts in the credential


def therapist_name(page: Any, text: str) -> Any:
    return page.locator(".msg:not(.own)", has_text=text).locator(".name.therapist")


@pytest.mark.parametrize("size", [(360, 740), (1280, 800)], ids=["phone", "desktop"])
def test_participants_see_the_verified_therapist_by_name_before_and_after_a_reload(
    browser: Any, keyed_node: ServerThread, size: tuple[int, int]
) -> None:
    server = keyed_node
    with tab(browser) as host_tab, tab(browser, *size) as guest_tab:
        host, guest = host_tab.page, guest_tab.page
        link = console_session(host, server, lobby=False)
        sam, sam_room = server.run(python_member(server.url, link, "Sam"))
        log = Recorder(server, sam_room)
        try:
            join(guest, link, "Ana")
            say(host, "Welcome, everyone")
            name = therapist_name(guest, "Welcome, everyone")
            name.wait_for()
            assert name.inner_text() == f"{THERAPIST} ✓ Verified therapist"

            # The member list names the therapist too, and has no Block button for them.
            people = guest.locator(".people li")
            row = people.filter(has=guest.locator(".name.therapist"))
            row.wait_for(state="attached")
            assert THERAPIST in (row.text_content() or "")
            assert row.locator("button.block").count() == 0
            sam_row = people.filter(has_text="Sam")
            assert sam_row.locator("button.block").count() == 1
            # Reporting the therapist's message stays possible.
            guest.locator(".msg:not(.own)", has_text="Welcome, everyone").get_by_role(
                "button", name="Report message"
            ).wait_for(state="attached")

            host_id = next(mid for mid, m in sam_room.members.items() if m.role == "host")
            time.sleep(0.6)  # the host's tab writes its room state shortly after a change
            host.reload()
            host.get_by_role("toolbar", name="Host controls").wait_for()
            say(host, "I am back")
            wait_sent(host, "I am back")
            therapist_name(guest, "I am back").wait_for()
            assert messages(guest, "Welcome, everyone").count() == 1
            assert [
                e
                for e in log.events
                if isinstance(e, (MemberLeft, MemberJoined)) and e.member_id == host_id
            ] == []
            assert guest.get_by_text("left.").count() == 0
            assert host_tab.errors == [] and guest_tab.errors == []
        finally:
            server.run(sam.close(leave=False))


def test_a_member_named_like_the_therapist_gets_no_badge(
    browser: Any, keyed_node: ServerThread
) -> None:
    server = keyed_node
    with tab(browser) as host_tab, tab(browser) as guest_tab:
        host, guest = host_tab.page, guest_tab.page
        link = console_session(host, server, lobby=False)
        sam, sam_room = server.run(python_member(server.url, link, "Sam"))
        try:
            join(guest, link, "Ana")
            # The server refuses titles ("Dr. …", nickname_reserved); the name itself it allows.
            server.run(sam_room.rename("A Rao"))
            server.run(sam_room.send("Trust me, I am the therapist"))
            item = guest.locator(".msg:not(.own)", has_text="Trust me")
            item.wait_for()
            assert item.locator(".name.therapist").count() == 0
            assert item.locator(".badge").count() == 0
            assert item.locator(".name").inner_text() == "A Rao"
            # The real therapist's message carries the badge.
            say(host, "This is the therapist")
            therapist_name(guest, "This is the therapist").wait_for()
        finally:
            server.run(sam.close(leave=False))
