"""Shared fixtures: a real node on a random port, real Socket.IO clients, and a clock tests can move."""

from __future__ import annotations

import asyncio
import io
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestServer

from chatserver.app import NODE_KEY, create_app
from chatserver.client import ChatClient
from chatserver.config import Settings
from chatserver.node import Node


class MovableClock:
    """Real time plus an offset the test can advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class RunningServer:
    url: str
    node: Node
    clock: MovableClock
    clients: list[Client] = field(default_factory=list)

    async def client(self) -> Client:
        c = Client()
        await c.connect(self.url)
        self.clients.append(c)
        return c


class Client:
    """A Socket.IO client (msgpack, websocket only) that records every push it gets."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(serializer="msgpack", reconnection=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.sio.on("*", self._record)

    async def _record(self, event: str, data: Any = None) -> None:
        await self.events.put((event, data))

    async def connect(self, url: str) -> None:
        await self.sio.connect(url, transports=["websocket"], wait_timeout=5)

    async def call(self, event: str, data: Any = None) -> Any:
        return await self.sio.call(event, data, timeout=5)

    async def next(
        self,
        name: str | None = None,
        timeout: float = 5.0,
        where: Callable[[Any], bool] | None = None,
    ) -> tuple[str, Any]:
        """The next push named `name` (and matching `where`), skipping others."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            event, data = await asyncio.wait_for(self.events.get(), max(remaining, 0.01))
            if (name is None or event == name) and (where is None or where(data)):
                return event, data

    def drain(self) -> list[tuple[str, Any]]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


ServerFactory = Callable[..., Awaitable[RunningServer]]

TEARDOWN_TIMEOUT_S = 30.0


async def bounded_teardown(step: Awaitable[None], what: str) -> None:
    """Close a fixture's servers or clients within a bound; past it, fail with the stack of every
    task still running, so a hang names what it waits on instead of holding CI to its limit."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=TEARDOWN_TIMEOUT_S)
    if done:
        task.result()
        return
    stacks = io.StringIO()
    for other in asyncio.all_tasks():
        other.print_stack(limit=20, file=stacks)
    task.cancel()
    pytest.fail(f"closing the {what} took over {TEARDOWN_TIMEOUT_S} s; tasks:\n{stacks.getvalue()}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One throwaway redis-server for the session; tests keep apart by key prefix."""
    from tests.cluster.harness import RedisServer

    server = RedisServer(name="session")
    asyncio.run(server.start())
    yield server.url
    server.cleanup()


@pytest.fixture(params=["memory", "redis"])
async def make_server(
    request: pytest.FixtureRequest, redis_url: str
) -> AsyncIterator[ServerFactory]:
    """Nodes on the embedded memory backend, and the same on Redis: both must behave alike."""
    servers: list[tuple[TestServer, RunningServer]] = []
    backend: dict[str, Any] = {}
    if request.param == "redis":
        backend = {"redis_url": redis_url, "redis_prefix": f"t{secrets.token_hex(4)}"}

    async def factory(**overrides: Any) -> RunningServer:
        defaults: dict[str, Any] = {
            "sweep_interval_s": 0.05,
            "web_dir": "/nonexistent",
            **backend,
        }
        settings = Settings(**{**defaults, **overrides})
        clock = MovableClock()
        app = create_app(settings, clock)
        test_server = TestServer(app, host="127.0.0.1")
        await test_server.start_server()
        running = RunningServer(f"http://127.0.0.1:{test_server.port}", app[NODE_KEY], clock)
        servers.append((test_server, running))
        return running

    yield factory

    async def teardown() -> None:
        for test_server, running in servers:
            for c in running.clients:
                await c.close()
            await test_server.close()

    await bounded_teardown(teardown(), "servers")


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Awaitable[ChatClient]]]:
    """Connected `ChatClient`s, closed when the test ends."""
    stack = AsyncExitStack()

    async def make(url: str, **options: Any) -> ChatClient:
        return await stack.enter_async_context(ChatClient(url, **options))

    yield make
    await bounded_teardown(stack.aclose(), "clients")


@pytest.fixture
async def server(make_server: ServerFactory) -> RunningServer:
    return await make_server()
