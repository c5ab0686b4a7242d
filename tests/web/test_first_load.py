"""The first load on a slow phone network, in a real Chromium with CDP network emulation (400 ms
latency, 400 kbit/s each way): "Leave quickly" and "Get help now" are on screen and clickable long
before the app script has arrived, work with JavaScript off, and give way to the app's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ServerThread

NEUTRAL = "https://neutral.example/weather"
SLOW_3G = {
    "offline": False,
    "latency": 400,  # ms, added to every request
    "downloadThroughput": 50_000,  # bytes/s (400 kbit/s)
    "uploadThroughput": 50_000,
}
BUDGET_S = 2.0


@pytest.fixture
def exit_node(web_dist: Path) -> Iterator[ServerThread]:
    server = ServerThread(exit_url=NEUTRAL).start()
    yield server
    server.stop()


def control(page: Any, name: str) -> Any:
    """The static link before the app runs, the app's button after: whichever is there."""
    return page.get_by_role("link", name=name).or_(page.get_by_role("button", name=name)).first


def measure(browser: Any, url: str) -> dict[str, Any]:
    """Seconds from navigation to both safety controls being clickable, and to the app being up,
    on emulated slow 3G, with a cold cache; plus what the script cost on the wire."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="en-GB")
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        cdp.send("Network.emulateNetworkConditions", SLOW_3G)
        scripts: list[dict[str, Any]] = []

        def on_response(response: Any) -> None:
            if response.request.resource_type == "script":
                scripts.append({"url": response.url, "headers": response.headers})

        page.on("response", on_response)
        start = time.monotonic()
        page.goto(url, wait_until="commit")
        for name in ("Leave quickly", "Get help now"):
            control(page, name).click(trial=True)  # visible, stable, enabled, gets the click
        controls_s = time.monotonic() - start
        page.get_by_role("button", name="Leave quickly").click(trial=True)
        app_s = time.monotonic() - start
        encoded = [
            page.evaluate(
                "u => performance.getEntriesByName(u).map(e => e.encodedBodySize)[0] || 0",
                s["url"],
            )
            for s in scripts
        ]
        return {
            "controls_s": controls_s,
            "app_s": app_s,
            "script_bytes": sum(encoded),
            "encodings": sorted(
                {s["headers"].get("content-encoding", "identity") for s in scripts}
            ),
        }
    finally:
        context.close()


def test_safety_controls_first_on_slow_3g(browser: Any, exit_node: ServerThread) -> None:
    figures = measure(browser, exit_node.url + "/")
    print(
        f"\nslow 3G (400 ms, 400 kbit/s): Leave quickly + Get help now clickable after "
        f"{figures['controls_s']:.2f} s; app up after {figures['app_s']:.2f} s; script "
        f"{figures['script_bytes']:,} bytes on the wire ({', '.join(figures['encodings'])})"
    )
    assert figures["controls_s"] < BUDGET_S, figures
    assert figures["encodings"] != ["identity"], figures


def test_static_controls_work_without_javascript(browser: Any, exit_node: ServerThread) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 360, "height": 740})
    context.route(
        "https://neutral.example/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<p>Weather</p>"),
    )
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(exit_node.url + "/r/AAAAAAAAAAAAAAAAAAAAAA")
        page.get_by_role("link", name="Get help now").click()
        help_box = page.locator("#early-help")
        assert help_box.is_visible()
        assert "call your local emergency number" in help_box.inner_text()
        assert page.get_by_role("link", name="Find a Helpline").get_attribute("href") == (
            "https://findahelpline.com"
        )
        page.get_by_role("link", name="Leave quickly").click()
        page.wait_for_url(NEUTRAL)
    finally:
        context.close()


def test_app_takes_the_controls_over(browser: Any, exit_node: ServerThread) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(exit_node.url + "/")
        page.get_by_role("button", name="Leave quickly").wait_for()
        assert page.locator("#early-tools").count() == 0
        assert page.get_by_text("Leave quickly", exact=True).count() == 1
        assert page.get_by_text("Get help now", exact=True).count() == 1
    finally:
        context.close()
