"""The README's screenshots: a therapist-led session seen by a participant, at 360x740 (a phone)
and 1280x800, in the system Chromium against a real node (the browser-test harness of tests/web).

    make screenshots     # writes web/screenshots/session-360x740.png and session-1280x800.png

The conversation is made up for the picture; nothing leaves this machine."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, ServerThread  # noqa: E402
from tests.web.test_console_controls import console_session, python_member  # noqa: E402
from tests.web.test_web import messages, say, tab  # noqa: E402

OUT = ROOT / "web" / "screenshots"
SIZES = [(360, 740), (1280, 800)]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerThread(key_file=str(Path(tmp) / "server.key")).start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                for width, height in SIZES:
                    shoot(browser, server, width, height)
                browser.close()
        finally:
            server.stop()


def shoot(browser: object, server: ServerThread, width: int, height: int) -> None:
    with tab(browser, 1280, 800) as host_tab, tab(browser, width, height) as guest_tab:
        host, guest = host_tab.page, guest_tab.page
        link = console_session(host, server, lobby=False, duration_min=50)
        sam, sam_room = server.run(python_member(server.url, link, "Sam"))
        try:
            guest.goto(link)
            guest.get_by_label("Your name here (optional)").fill("Ana")
            guest.get_by_role("button", name="Join the room").click()
            guest.get_by_text("You joined as Ana").wait_for()
            say(host, "Welcome, both of you. Take your time; there is no rush to write.")
            server.run(sam_room.send("Thanks. This week was hard, sleep has been the worst part."))
            say(guest, "Same here. I keep waking up at 4 and can't get back to sleep.")
            say(host, "That sounds exhausting. What usually goes through your mind at 4?")
            messages(guest, "What usually goes through").wait_for()
            guest.locator(".name.therapist").first.wait_for()
            not_now = guest.get_by_role("button", name="Not now")
            if not_now.count():
                not_now.click()  # the mood check-in, answered another time
            time.sleep(0.5)
            path = OUT / f"session-{width}x{height}.png"
            guest.screenshot(path=str(path))
            print(f"wrote {path.relative_to(ROOT)}")
        finally:
            server.run(sam.close(leave=False))


if __name__ == "__main__":
    main()
