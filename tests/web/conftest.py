"""Browser tests: a real node in a background thread serving web/dist, and Debian's Chromium
driven by Playwright (sync API). Nothing is skipped: a missing build or browser fails loudly."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from chatserver import credentials
from chatserver.app import NODE_KEY, create_app
from chatserver.config import Settings
from chatserver.node import Node

ROOT = Path(__file__).resolve().parents[2]
WEB_DIST = ROOT / "web" / "dist"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

T = TypeVar("T")


class ServerThread:
    """A chatserver node (memory backend) on a random port, in its own thread and event loop."""

    def __init__(self, port: int = 0, **overrides: Any) -> None:
        # `port`: 0 takes a free one; a given port lets a fresh node replace a stopped one.
        self._port = port
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.url = ""
        self.node: Node | None = None
        self._overrides = overrides
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chatserver-web-test", daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("the chatserver node did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            settings = Settings(
                **{"sweep_interval_s": 0.05, "web_dir": str(WEB_DIST), **self._overrides}
            )
            app = create_app(settings)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", self._port)
            await site.start()
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            self.node = app[NODE_KEY]
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
        """Run a coroutine on the server's loop (e.g. a Python ChatClient) and wait for it."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def sids(self) -> set[str]:
        """Socket.IO session ids connected now."""
        assert self.node is not None
        rooms = self.node.sio.manager.rooms.get("/", {})
        return set(rooms.get(None, {}).keys())

    def disconnect(self, sid: str) -> None:
        """Close one connection from the server side."""
        assert self.node is not None
        self.run(self.node.sio.disconnect(sid))

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(scope="session")
def web_dist() -> Path:
    manifest = WEB_DIST / "manifest.json"
    if not (WEB_DIST / "index.html").is_file() or not manifest.is_file():
        pytest.fail(f"the web client is not built ({WEB_DIST}): run scripts/build-web first")
    names = json.loads(manifest.read_text())
    if not all(
        (WEB_DIST / names[name]).is_file() for name in ("app.js", "style.css", "console.js")
    ):
        pytest.fail(f"the web client's build is incomplete ({manifest}): run scripts/build-web")
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE}): run scripts/build-web (npm ci) first")
    return WEB_DIST


def built(name: str) -> str:
    """The hashed file name the build gave `name` ("app.js", "style.css", "console.js")."""
    return str(json.loads((WEB_DIST / "manifest.json").read_text())[name])


@pytest.fixture
def node(web_dist: Path) -> Iterator[ServerThread]:
    server = ServerThread().start()
    yield server
    server.stop()


@pytest.fixture
def keyed_node(web_dist: Path, tmp_path: Path) -> Iterator[ServerThread]:
    """A node with a server key in a temporary file, for therapist credentials."""
    server = ServerThread(key_file=str(tmp_path / "server.key")).start()
    yield server
    server.stop()


def issue(server: ServerThread, name: str = "Dr. A. Rao") -> str:
    """A therapist credential token signed by this node's key."""
    assert server.node is not None and server.node.server_key is not None
    token, _ = credentials.issue(server.node.server_key, name, 30, time.time())
    return token


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `scripts/ensure-system-packages chromium`"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the `playwright` Python package is missing: pip install playwright")
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
