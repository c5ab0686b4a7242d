"""Reporting a message from the page, in a real Chromium against a real node: a therapist hosts a
session in the console, a member in the browser is admitted from the lobby, another participant
(the Python client) writes, the member reports that message with the keyboard and a reason from
the server's list, sees the confirmation, and the host's report queue shows it verified with its
text. A hide from the queue collapses it in place for the member; a refusal is a sentence."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import ServerThread
from .test_console_controls import admitted_member, console_session
from .test_web import axe, messages, no_horizontal_scroll, tab


def report_button(page: Any, text: str) -> Any:
    item = page.locator(".msg:not(.own)").filter(has=page.locator(".text", has_text=text))
    return item.get_by_role("button", name=re.compile(r"^Report message from "))


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (360, 740)])
def test_member_reports_a_message_and_the_host_sees_it_verified(
    browser: Any, keyed_node: ServerThread, artifacts: Path, width: int, height: int
) -> None:
    server = keyed_node
    with (
        tab(browser) as host_tab,
        tab(browser, width=width, height=height, bypass_csp=True) as member_tab,
    ):
        host, member = host_tab.page, member_tab.page
        link = console_session(host, server)
        member.goto(link)
        member.get_by_label("Your name here (optional)").fill("Ana")
        member.get_by_role("button", name="Join the room").click()
        member.get_by_text("You are in the waiting room").wait_for()
        host.get_by_role("button", name="Admit Ana").click()
        member.get_by_role("log", name="Messages").wait_for()
        kim, kim_room = admitted_member(server, host, link, "Kim")
        try:
            member.locator(".people li", has_text="Kim").wait_for(state="attached")
            server.run(kim_room.send("nobody here likes you"))
            messages(member, "nobody here likes you").wait_for()

            # The Report action: a real button with an accessible name, reached by keyboard.
            button = report_button(member, "nobody here likes you")
            assert button.get_attribute("aria-label") == "Report message from Kim"
            button.focus()
            member.keyboard.press("Enter")
            dialog = member.get_by_role("dialog", name="Report this message")
            dialog.wait_for()
            # The reasons are the server's list (CHATSERVER_REPORT_REASONS), as radio buttons.
            for label in ("Harassment", "Hate", "Self-harm risk", "Spam", "Other"):
                dialog.get_by_label(label, exact=True).wait_for()
            member.wait_for_function(
                "document.activeElement && document.activeElement.type === 'radio'"
            )
            no_horizontal_scroll(member)
            assert axe(member) == []
            member.screenshot(path=str(artifacts / f"report-dialog-{width}x{height}.png"))
            # Sending without a reason asks for one, in words.
            dialog.get_by_role("button", name="Send report").click()
            dialog.get_by_text("Choose a reason first.").wait_for()
            dialog.get_by_label("Harassment", exact=True).focus()
            member.keyboard.press("Space")
            assert dialog.get_by_label("Harassment", exact=True).is_checked()
            dialog.get_by_role("button", name="Send report").focus()
            member.keyboard.press("Enter")

            # The reporter sees plainly that it went to the hosts.
            member.get_by_text("Reported to the room's hosts.").wait_for()
            dialog.wait_for(state="detached")
            assert report_button(member, "nobody here likes you").count() == 0
            no_horizontal_scroll(member)

            # The host's console shows it, verified, with the message's text.
            report = host.locator(".report-queue .report")
            report.wait_for()
            report.locator(".report-field", has_text="Text: nobody here likes you").wait_for()
            assert "harassment · from Kim · 1 report(s)" in report.inner_text()
            report.get_by_text("Verified:").wait_for()
            member.screenshot(path=str(artifacts / f"report-sent-{width}x{height}.png"))

            # The host hides it from the queue: the member sees it collapsed in place.
            report.get_by_role("button", name="Hide").click()
            item = member.locator(".msg:not(.own)").filter(
                has=member.get_by_text("Hidden after reports, pending review")
            )
            item.wait_for()
            assert not messages(member, "nobody here likes you").is_visible()

            # A refusal is a sentence, never a code: the sender left, so the server cannot
            # check the message (bad_report).
            server.run(kim_room.send("one more thing"))
            messages(member, "one more thing").wait_for()
            server.run(kim_room.leave())
            member.get_by_text("Kim left.").wait_for()
            report_button(member, "one more thing").click()
            dialog = member.get_by_role("dialog", name="Report this message")
            dialog.get_by_label("Spam", exact=True).check()
            dialog.get_by_role("button", name="Send report").click()
            alert = dialog.get_by_role("alert")
            alert.get_by_text("could not be checked").wait_for()
            assert "_" not in alert.inner_text()
            member.keyboard.press("Escape")
            dialog.wait_for(state="detached")
            assert report_button(member, "one more thing").count() == 1

            # Nothing of a report is written to storage: the tab keeps the conversation for a
            # reload (docs/e2ee.md §19), never that it reported a message, or why.
            stored = member.evaluate(
                "JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})"
            )
            assert "harassment" not in stored.lower() and "reported" not in stored.lower()
            assert host_tab.errors == [] and member_tab.errors == []
        finally:
            server.run(kim.close(leave=False))
