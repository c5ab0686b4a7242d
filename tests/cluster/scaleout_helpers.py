"""Helpers for the scale-out acceptance tests: room members that record every event they see,
checks of order and completeness, which node a client landed on, and a node's Redis connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from chatserver.client import (
    ChatClient,
    ChatError,
    DecryptFailed,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    Message,
    Reconnected,
    Room,
    RoomEnded,
    RoomEvent,
    RoomUpdated,
    Sent,
)
from chatserver.links import RoomLink
from tests.cluster.harness import ChatNode

# Tests send fast: per-connection limits must not be what they measure.
FAST = {
    "msg_rate_per_s": 1000,
    "msg_burst": 1000,
    "join_rate_per_s": 100,
    "join_burst": 100,
    "create_rate_per_s": 100,
    "create_burst": 100,
    "control_rate_per_s": 100,
    "control_burst": 100,
}

ORDERED = (Message, MemberJoined, MemberLeft, MemberUpdated, RoomUpdated, RoomEnded, DecryptFailed)


def room_channel(room_id: str, prefix: str = "cs") -> str:
    return f"{prefix}:{{{room_id}}}:ch"


@dataclass
class Member:
    """One ChatClient in one room, recording every room event with its arrival time."""

    name: str
    client: ChatClient
    room: Room
    node: ChatNode | None = None  # where it landed (None: unknown)
    events: list[tuple[float, RoomEvent]] = field(default_factory=list)
    ended: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> Member:
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        async for event in self.room.events():
            self.events.append((loop.time(), event))
            self._changed.set()
        self.ended = True
        self._changed.set()

    @property
    def member_id(self) -> str:
        return self.room.member_id

    def ordered(self) -> list[Any]:
        return [e for _, e in self.events if isinstance(e, ORDERED)]

    def messages(self) -> list[Message]:
        return [e for _, e in self.events if isinstance(e, Message)]

    def texts(self) -> list[str]:
        return [m.text for m in self.messages()]

    def reconnects(self) -> list[Reconnected]:
        return [e for _, e in self.events if isinstance(e, Reconnected)]

    def left(self) -> list[tuple[float, MemberLeft]]:
        return [(t, e) for t, e in self.events if isinstance(e, MemberLeft)]

    def failures(self) -> list[DecryptFailed]:
        return [e for _, e in self.events if isinstance(e, DecryptFailed)]

    async def wait_for(self, check: Callable[[Member], bool], what: str, timeout: float) -> None:
        """Until `check(self)` holds; AssertionError naming `what` after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check(self):
            left = deadline - loop.time()
            if left <= 0 or self.ended:
                raise AssertionError(
                    f"{self.name}: {what} not seen within {timeout}s "
                    f"(ended={self.ended}, {len(self.messages())} messages, "
                    f"last seq {self.room.seq}, held back {sorted(self.room._waiting)[:6]}, "
                    f"reconnects {self.reconnects()}, last events {self.events[-3:]})"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.25))

    async def wait_texts(self, texts: Iterable[str], timeout: float) -> None:
        wanted = set(texts)
        await self.wait_for(
            lambda m: wanted <= set(m.texts()), f"{len(wanted)} expected messages", timeout
        )

    async def close(self, *, leave: bool = True) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.close(leave=leave), 5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def join_member(
    name: str,
    url: str,
    link: RoomLink | str,
    *,
    nodes: Sequence[ChatNode] = (),
    reconnect_delay: float = 0.1,
    reconnect_delay_max: float = 0.5,
    reconnect_timeout: float = 60.0,
) -> Member:
    """Connect to `url` (a node or nginx), join, start recording. With `nodes`, find out which
    node the websocket landed on by watching the nodes' established connections."""
    client = ChatClient(
        url,
        reconnect_delay=reconnect_delay,
        reconnect_delay_max=reconnect_delay_max,
        reconnect_timeout=reconnect_timeout,
    )
    before = [n.connections for n in nodes]
    await client.connect()
    node = await landed_on(nodes, before) if nodes else None
    room = await client.join(link, nickname=name)
    return Member(name, client, room, node).start()


async def landed_on(nodes: Sequence[ChatNode], before: Sequence[int]) -> ChatNode:
    """The node whose established connections grew since `before` (a client just connected)."""
    for _ in range(40):
        grown = [n for n, b in zip(nodes, before, strict=True) if n.connections > b]
        if len(grown) == 1:
            return grown[0]
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"cannot tell which node the client landed on: before {list(before)}, "
        f"now {[n.connections for n in nodes]}"
    )


async def close_all(members: Iterable[Member], *, leave: bool = False) -> None:
    await asyncio.gather(*(m.close(leave=leave) for m in members), return_exceptions=True)


# --- checks ----------------------------------------------------------------------------------


def assert_contiguous(member: Member) -> None:
    """The ordered events a member saw have seq strictly +1 each (no hole, no repeat)."""
    seqs = [e.seq for e in member.ordered()]
    holes = [(a, b) for a, b in itertools.pairwise(seqs) if b != a + 1]
    assert not holes, f"{member.name}: seq not contiguous at {holes[:5]} (of {len(seqs)} events)"


def assert_no_decrypt_failures(members: Iterable[Member]) -> None:
    for m in members:
        assert not m.failures(), f"{m.name}: envelopes not opened: {m.failures()[:5]}"


def assert_all_acked_once_in_order(
    members: Iterable[Member], acked: dict[str, Sent], *, context: str = ""
) -> None:
    """Every acknowledged message is at every member exactly once, at its acked seq, in order;
    and the messages are in the same order everywhere."""
    orders = {}
    for m in members:
        msgs = m.messages()
        counts = Counter(msg.text for msg in msgs)
        missing = sorted(t for t in acked if counts[t] == 0)
        doubled = sorted(t for t in acked if counts[t] > 1)
        assert not missing, f"{context}{m.name} lacks {len(missing)} acked messages: {missing[:8]}"
        assert not doubled, f"{context}{m.name} got acked messages twice: {doubled[:8]}"
        seqs = [msg.seq for msg in msgs]
        assert seqs == sorted(set(seqs)), f"{context}{m.name}: message seqs not increasing"
        wrong = [
            (msg.text, msg.seq, acked[msg.text].seq)
            for msg in msgs
            if msg.text in acked and msg.seq != acked[msg.text].seq
        ]
        assert not wrong, f"{context}{m.name}: seq differs from the ack: {wrong[:5]}"
        orders[m.name] = [(msg.seq, msg.text) for msg in msgs if msg.text in acked]
    first = next(iter(orders.values()))
    for name, order in orders.items():
        assert order == first, f"{context}{name} saw another order than the first member"


async def send_stream(
    member: Member,
    prefix: str,
    count: int,
    rate: float,
    acked: dict[str, Sent],
    errors: list[tuple[float, str, ChatError]] | None = None,
    stop: asyncio.Event | None = None,
    retry_unavailable: bool = False,
) -> None:
    """Send `count` messages `prefix-i` at `rate`/s; acks into `acked`; a ChatError is recorded
    in `errors` (when given, else raised) and the stream goes on. With `retry_unavailable`, a
    message refused with `unavailable` is sent again after its `retry_after` (as an app would)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(count):
        if stop is not None and stop.is_set():
            return
        text = f"{prefix}-{i}"
        while True:
            try:
                acked[text] = await member.room.send(text)
            except ChatError as exc:
                if errors is None:
                    raise
                errors.append((loop.time(), text, exc))
                if retry_unavailable and exc.code == "unavailable":
                    await asyncio.sleep(min(exc.retry_after or 1.0, 1.0))
                    continue
            break
        delay = start + (i + 1) / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)


# --- node-side evidence --------------------------------------------------------------------


async def metric(node: ChatNode, name: str) -> float | None:
    """A sample of the node's /metrics (summing over labels), or None when /metrics is absent."""
    timeout = aiohttp.ClientTimeout(total=2)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(node.url + "/metrics") as r,
    ):
        if r.status != 200:
            return None
        text = await r.text()
    values = [
        float(m.group(1))
        for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    ]
    return sum(values) if values else None


def process_ports_to(pid: int, remote_port: int) -> set[int]:
    """Local ports of the established TCP connections process `pid` holds to `remote_port`."""
    inodes = set()
    with contextlib.suppress(FileNotFoundError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                remote = int(cols[2].rsplit(":", 1)[1], 16)
                if cols[3] == "01" and cols[9] in inodes and remote == remote_port:
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


async def client_list(redis: Any) -> list[dict[str, str]]:
    raw = await redis.execute_command("CLIENT LIST")
    text = raw.decode() if isinstance(raw, bytes) else raw
    if isinstance(text, list):  # some client versions parse the reply
        return [{str(k): str(v) for k, v in entry.items()} for entry in text]
    return [
        dict(kv.split("=", 1) for kv in line.split() if "=" in kv) for line in text.splitlines()
    ]


def subscribers(clients: list[dict[str, str]]) -> list[dict[str, str]]:
    """CLIENT LIST entries in pub/sub mode (classic or sharded subscriptions)."""
    return [
        c for c in clients if int(c.get("sub", 0)) + int(c.get("ssub", 0)) + int(c.get("psub", 0))
    ]


def entries_of(node: ChatNode, clients: list[dict[str, str]], redis_port: int) -> list[dict]:
    """The CLIENT LIST entries that are this node's connections."""
    ports = process_ports_to(node.pid, redis_port)
    return [c for c in clients if int(c["addr"].rsplit(":", 1)[1]) in ports]


async def wait_until(check: Callable[[], Any], what: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
        except Exception as exc:
            last = exc
        if loop.time() > deadline:
            raise AssertionError(f"{what} not within {timeout}s (last error: {last!r})")
        await asyncio.sleep(0.05)
