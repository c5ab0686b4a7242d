"""Rooms at scale, with the real Python client (real E2EE, sender keys as the client sends them).

Scenarios (`--only`, comma-separated; all by default):

- `fill`: one room filled to each of `--sizes` members, on each of `--backend` (`memory`: one
  embedded node; `redis`: one node on a redis-server; `redis2`: two nodes on one redis-server,
  members alternating): the time until every join is acked, until every member sees every
  member, and until the key shares have settled (every member holds a sender key of every other
  member, so it can open anything any of them sends); requests by event and refusals by code
  (the node's /metrics), server CPU seconds (/proc/<pid>/stat).
- `after_leave`: in each filled room, one member leaves and another sends one message at once:
  the time until every remaining member has decrypted it, and what was refused meanwhile.
- `node_kill`: `--clients` clients in rooms of `--room-size` on two Redis-backed nodes behind
  nginx (deploy/nginx.conf), a steady stream of messages in every room, SIGKILL of the node that
  holds the most connections mid-stream: the time until every client of the dead node is back,
  acknowledged messages lost, duplicates, decrypt failures, members who had to rejoin with a new
  identity. `--runs` repeats it.

    .venv/bin/python bench/scale.py --only fill,after_leave --sizes 100,300,500 --backend memory,redis
    .venv/bin/python bench/scale.py --only node_kill --clients 2000 --runs 3 --procs 4
    .venv/bin/python bench/scale.py --sizes 20,50 --clients 200          # a quick check

Nodes run with the production defaults (rate limits included: the goal is that nothing is
refused with `rate_limited` or `unavailable`), only the log level lowered and `max_capacity`
raised when a size asks for more than its default of 500. Clients come from `--procs` generator
processes (one asyncio loop each; 1: this process). Every generator reports its CPU use: a
saturated generator measures itself, not the server. `--pin` puts redis and the nodes on the
first half of the CPUs and the generators on the rest.

Prints one JSON summary on stdout and a readable table on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chatserver.client import (  # noqa: E402
    ChatClient,
    ChatError,
    DecryptFailed,
    KeyRejected,
    MemberJoined,
    MemberLeft,
    Message,
    Reconnected,
    Room,
    RoomEnded,
)
from chatserver.config import Settings  # noqa: E402
from chatserver.links import format_link, parse_link  # noqa: E402
from tests.cluster.harness import ChatNode, Nginx, RedisServer  # noqa: E402

REFUSALS = ("rate_limited", "unavailable")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Direct children of `pid` (nginx's workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


def pin(pid: int, cpus: set[int]) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(pid, cpus)


def cpu_halves() -> tuple[set[int], set[int]]:
    """(server CPUs, generator CPUs) for --pin."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(cpus), set(cpus)
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


# -- /metrics ----------------------------------------------------------------------------------

REQUEST_LINE = re.compile(r"^chatserver_requests_total\{([^}]*)\} (\S+)$", re.M)
LABEL = re.compile(r'(\w+)="([^"]*)"')


async def requests_of(url: str) -> Counter[str]:
    """`chatserver_requests_total` as {"event:result": count}."""
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url + "/metrics") as r:
        text = await r.text()
    out: Counter[str] = Counter()
    for labels, value in REQUEST_LINE.findall(text):
        lab = dict(LABEL.findall(labels))
        out[f"{lab.get('event')}:{lab.get('result')}"] += int(float(value))
    return out


def request_report(before: Counter[str], after: Counter[str]) -> dict[str, Any]:
    """Requests by event, refusals by code (and the two that must stay at 0)."""
    delta = after - before
    by_event: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    refused_by_event: Counter[str] = Counter()
    for key, n in delta.items():
        event, result = key.split(":", 1)
        by_event[event] += n
        if result != "ok":
            refused[result] += n
            refused_by_event[key] += n
    return {
        "requests_total": sum(by_event.values()),
        "requests_by_event": dict(sorted(by_event.items())),
        "refused_by_code": dict(sorted(refused.items())),
        "refused_by_event": dict(sorted(refused_by_event.items())),
        "rate_limited": refused["rate_limited"],
        "unavailable": refused["unavailable"],
    }


# -- members -----------------------------------------------------------------------------------


@dataclass
class Member:
    """One ChatClient in one room, recording what the measurements need, with arrival times."""

    name: str
    client: ChatClient
    room: Room
    texts: dict[str, list[float]] = field(default_factory=dict)
    failures: int = 0
    rejected_keys: int = 0
    reconnects: list[tuple[float, bool]] = field(default_factory=list)  # (at, resumed)
    ended: str | None = None
    lefts: list[float] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def start(self) -> Member:
        self.task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        async for ev in self.room.events():
            now = time.monotonic()
            if isinstance(ev, Message):
                self.texts.setdefault(ev.text, []).append(now)
            elif isinstance(ev, DecryptFailed):
                self.failures += 1
            elif isinstance(ev, KeyRejected):
                self.rejected_keys += 1
            elif isinstance(ev, Reconnected):
                self.reconnects.append((now, ev.resumed))
            elif isinstance(ev, MemberLeft):
                self.lefts.append(now)
            elif isinstance(ev, RoomEnded):
                self.ended = ev.reason
            elif isinstance(ev, MemberJoined):
                pass

    def sees(self, n: int) -> bool:
        return len(self.room.members) >= n

    def keys_settled(self, n: int) -> bool:
        """Has admitted the cards of the other n - 1 members: its next message carries its key
        to each of them (clients share when they speak, never on a join or a leave)."""
        crypto = self.room._crypto
        return crypto is not None and len(crypto._members) >= n - 1

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.close(leave=False), 5)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def gather_limited(coros: Iterable[Awaitable[Any]], limit: int) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(c: Awaitable[Any]) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)


async def join_one(url: str, link: str, name: str, errors: Counter[str]) -> Member | None:
    client = ChatClient(url)  # the client's own reconnect backoff
    try:
        await client.connect()
        # No nickname: the server refuses ones confusable with a member's (m1, ml...).
        room = await client.join(parse_link(link))
    except ChatError as exc:
        errors[exc.code] += 1
        with contextlib.suppress(Exception):
            await client.close(leave=False)
        return None
    return Member(name, client, room).start()


# -- the generator (one per process) ---------------------------------------------------------


class Generator:
    """The clients of one generator process; each method is a step the main process orders."""

    def __init__(self, gid: int) -> None:
        self.gid = gid
        self.members: list[Member] = []
        self.rooms: list[list[Member]] = []  # node_kill: this generator's rooms
        self.acked: list[dict[str, int]] = []  # per room: text -> seq
        self.cpu0 = time.process_time()

    def cpu(self) -> float:
        return time.process_time() - self.cpu0

    async def close(self) -> float:
        await asyncio.gather(*(m.close() for m in self.members))
        self.members.clear()
        self.rooms.clear()
        return self.cpu()

    # fill and after_leave

    async def join(self, urls: list[str], link: str, names: list[str], limit: int) -> dict:
        errors: Counter[str] = Counter()
        last = 0.0

        async def one(i: int, name: str) -> Member | None:
            nonlocal last
            m = await join_one(urls[i % len(urls)], link, name, errors)
            last = max(last, time.monotonic())
            return m

        got = await gather_limited([one(i, n) for i, n in enumerate(names)], limit)
        for m in got:
            if isinstance(m, Member):
                self.members.append(m)
            elif isinstance(m, BaseException):
                errors[type(m).__name__] += 1
        return {"joined": len(self.members), "last_ack": last, "errors": dict(errors)}

    async def lagging(self, n: int) -> list[dict[str, Any]]:
        """The members that do not see n members or lack keys (for a report on a timeout)."""
        return [
            {
                "name": m.name,
                "sees": len(m.room.members),
                "keys": len(m.room._crypto._chains) if m.room._crypto else 0,
                "seq": m.room.seq,
                "held_back": sorted(m.room._waiting)[:5],
                "reconnects": len(m.reconnects),
                "ended": m.ended,
            }
            for m in self.members
            if not (m.sees(n) and m.keys_settled(n))
        ][:10]

    async def lagging_rooms(self) -> list[dict[str, Any]]:
        """node_kill: members not settled in their room (for a report on a timeout)."""
        out = []
        for members in self.rooms:
            n = len(members)
            for m in members:
                if not (m.sees(n) and m.keys_settled(n)):
                    crypto = m.room._crypto
                    out.append(
                        {
                            "name": m.name,
                            "room_members_here": n,
                            "sees": len(m.room.members),
                            "admitted": len(crypto._members) if crypto else 0,
                            "keys": len(crypto._chains) if crypto else 0,
                        }
                    )
        return out[:10]

    async def wait(self, what: str, n: int, limit_s: float) -> float | None:
        """When every member here sees n members (`members`) or holds n - 1 keys (`keys`)."""
        check: Callable[[Member], bool] = (
            (lambda m: m.sees(n)) if what == "members" else (lambda m: m.keys_settled(n))
        )
        pending = list(self.members)
        deadline = time.monotonic() + limit_s
        while True:
            pending = [m for m in pending if not check(m)]
            if not pending:
                return time.monotonic()
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)

    async def leave(self, count: int) -> list[str]:
        gone = self.members[:count]
        self.members = self.members[count:]
        for m in gone:
            await m.room.leave()
        for m in gone:
            await m.close()
        return [m.room.member_id for m in gone]

    async def send(self, index: int, text: str) -> dict[str, Any]:
        m = self.members[index]
        t0 = time.monotonic()
        try:
            sent = await m.room.send(text)
        except ChatError as exc:
            return {"at": t0, "error": exc.code}
        return {"at": t0, "acked_at": time.monotonic(), "seq": sent.seq}

    async def wait_text(self, text: str, limit_s: float, skip: int = -1) -> dict[str, Any]:
        """When every member here (but `skip`) has the message `text` decrypted."""
        pending = [m for i, m in enumerate(self.members) if i != skip]
        deadline = time.monotonic() + limit_s
        while pending and time.monotonic() < deadline:
            pending = [m for m in pending if text not in m.texts]
            if pending:
                await asyncio.sleep(0.02)
        receivers = [m for i, m in enumerate(self.members) if i != skip and text in m.texts]
        return {
            "last_at": max((m.texts[text][0] for m in receivers), default=None),
            "missing": len(pending),
            "decrypt_failures": sum(m.failures for m in self.members),
        }

    async def health(self) -> dict[str, Any]:
        refused: Counter[str] = Counter()
        for m in self.members:
            refused.update(m.room.refused)
        return {
            "decrypt_failures": sum(m.failures for m in self.members),
            "keys_rejected": sum(m.rejected_keys for m in self.members),
            "pushes_refused": dict(refused),
            "reconnects": sum(len(m.reconnects) for m in self.members),
            "ended": sum(1 for m in self.members if m.ended),
            "cpu_s": self.cpu(),
        }

    # node_kill

    async def make_rooms(self, url: str, rooms: int, size: int, limit: int) -> dict[str, Any]:
        errors: Counter[str] = Counter()

        async def one_room(r: int) -> list[Member]:
            owner = ChatClient(url)
            for _ in range(30):  # creation is setup, not measured: wait out its rate limit
                try:
                    await owner.connect()
                    created = await owner.create_room()
                    break
                except ChatError as exc:
                    errors[f"create:{exc.code}"] += 1
                    await owner.close(leave=False)
                    owner = ChatClient(url)
                    await asyncio.sleep(exc.retry_after or 1.0)
            else:
                return []
            await owner.close(leave=False)
            link = format_link(created.link)
            got = [await join_one(url, link, f"g{self.gid}r{r}m{j}", errors) for j in range(size)]
            return [m for m in got if m is not None]

        rooms_got = await gather_limited([one_room(r) for r in range(rooms)], limit)
        for members in rooms_got:
            if isinstance(members, list) and members:
                self.rooms.append(members)
                self.members.extend(members)
                self.acked.append({})
            elif isinstance(members, BaseException):
                errors[type(members).__name__] += 1
        return {"rooms": len(self.rooms), "members": len(self.members), "errors": dict(errors)}

    async def wait_rooms_settled(self, limit_s: float) -> float | None:
        deadline = time.monotonic() + limit_s
        pending = [(m, len(r)) for r in self.rooms for m in r]
        while True:
            pending = [(m, n) for m, n in pending if not (m.sees(n) and m.keys_settled(n))]
            if not pending:
                return time.monotonic()
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.1)

    async def stream(self, start: float, seconds: float, rate: float) -> dict[str, Any]:
        """From `start` (monotonic), `rate` messages per second in each room for `seconds`,
        from its members in turn; each send awaits its ack (a member's sends queue up)."""
        errors: Counter[str] = Counter()
        unacked = 0
        tasks: set[asyncio.Task[None]] = set()

        async def one(r: int, m: Member, text: str) -> None:
            nonlocal unacked
            try:
                sent = await m.room.send(text)
            except ChatError as exc:
                errors[exc.code] += 1
                unacked += 1
                return
            self.acked[r][text] = sent.seq

        await asyncio.sleep(max(0.0, start - time.monotonic()))
        count = int(seconds * rate)
        phase = [k / max(len(self.rooms), 1) for k in range(len(self.rooms))]
        schedule = sorted(
            (start + (i + phase[r]) / rate, r, i)
            for r in range(len(self.rooms))
            for i in range(count)
        )
        for at, r, i in schedule:
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            room = self.rooms[r]
            m = room[i % len(room)]
            if m.room.closed:
                continue
            task = asyncio.create_task(one(r, m, f"g{self.gid}-r{r}-{i}"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=60)
        return {
            "sent": sum(len(a) for a in self.acked) + unacked,
            "acked": sum(len(a) for a in self.acked),
            "send_errors": dict(errors),
            "still_pending": len(tasks),
        }

    async def settle(self, limit_s: float) -> dict[str, Any]:
        """Wait (up to `limit_s`) until every member holds every acked message of its room."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if all(
                all(t in m.texts for t in acked)
                for members, acked in zip(self.rooms, self.acked, strict=True)
                for m in members
                # A member that rejoined with a new identity never gets what it missed.
                if m.ended is None and all(resumed for _, resumed in m.reconnects)
            ):
                break
            await asyncio.sleep(0.2)
        lost = lost_rejoined = dup = 0
        lost_messages: set[str] = set()
        for members, acked in zip(self.rooms, self.acked, strict=True):
            for m in members:
                rejoined = any(not resumed for _, resumed in m.reconnects)
                for t in acked:
                    got = len(m.texts.get(t, ()))
                    if got == 0:
                        if rejoined:
                            lost_rejoined += 1
                        else:
                            lost += 1
                            lost_messages.add(t)
                    dup += max(0, got - 1)
        return {
            "lost_member_messages": lost,
            "lost_distinct_messages": len(lost_messages),
            "lost_at_rejoined_members": lost_rejoined,
            "duplicates": dup,
            "decrypt_failures": sum(m.failures for m in self.members),
            "keys_rejected": sum(m.rejected_keys for m in self.members),
            "reconnects": [[at, resumed] for m in self.members for at, resumed in m.reconnects],
            "reconnected_members": sum(1 for m in self.members if m.reconnects),
            "rejoined_new_identity": sum(
                1 for m in self.members if any(not r for _, r in m.reconnects)
            ),
            "rooms_ended_for": sum(1 for m in self.members if m.ended),
            "cpu_s": self.cpu(),
        }


# -- generators in this process or in child processes ---------------------------------------


class Local:
    def __init__(self, gid: int) -> None:
        self.gen = Generator(gid)

    async def call(self, method: str, *args: Any) -> Any:
        return await getattr(self.gen, method)(*args)

    async def stop(self) -> None:
        await self.gen.close()


def quiet_libraries() -> None:
    """engine.io logs every connection the killed node dropped; the figures say it already."""
    for name in ("engineio.client", "socketio.client"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _child(conn: Connection, gid: int, cpus: list[int] | None) -> None:
    quiet_libraries()
    if cpus:
        pin(0, set(cpus))
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    async def serve() -> None:
        gen = Generator(gid)
        loop = asyncio.get_running_loop()
        while True:
            method, args = await loop.run_in_executor(None, conn.recv)
            if method == "exit":
                await gen.close()
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", await getattr(gen, method)(*args)))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))

    asyncio.run(serve())


class Remote:
    """A Generator in a child process (spawned), driven over a pipe, one call at a time."""

    def __init__(self, gid: int, cpus: set[int] | None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_child, args=(child, gid, sorted(cpus) if cpus else None), daemon=True
        )
        self.proc.start()
        self.lock = asyncio.Lock()

    async def call(self, method: str, *args: Any) -> Any:
        async with self.lock:
            self.conn.send((method, args))
            status, value = await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)
        if status != "ok":
            raise RuntimeError(f"generator failed in {method}: {value}")
        return value

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call("exit"), 30)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


Gen = Local | Remote


def generators(args: argparse.Namespace) -> list[Gen]:
    if args.procs <= 1:
        return [Local(0)]
    cpus = cpu_halves()[1] if args.pin else None
    return [Remote(g, cpus) for g in range(args.procs)]


async def on_all(gens: list[Gen], method: str, *args: Any) -> list[Any]:
    return list(await asyncio.gather(*(g.call(method, *args) for g in gens)))


def split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[k::parts] for k in range(parts)]


# -- infrastructure ----------------------------------------------------------------------------


def node_settings(args: argparse.Namespace, size: int = 0) -> dict[str, Any]:
    settings: dict[str, Any] = {"log_level": "warning"}
    if size > Settings.max_capacity:
        settings["max_capacity"] = size
    return settings


@dataclass
class Cluster:
    nodes: list[ChatNode]
    redis: RedisServer | None = None
    nginx: Nginx | None = None

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def cpu(self) -> list[float]:
        return [cpu_seconds(n.pid) if n.running else 0.0 for n in self.nodes]

    async def requests(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for n in self.nodes:
            if n.running:
                total += await requests_of(n.url)
        return total

    def warnings(self) -> dict[str, int]:
        """The nodes' warnings and errors, by message (and error type), from their log files."""
        seen: Counter[str] = Counter()
        for n in self.nodes:
            for line in n.logs().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("warning", "error"):
                    error = entry.get("error")
                    seen[f"{entry.get('msg')}" + (f" ({error})" if error else "")] += 1
        return dict(seen.most_common(10))

    async def stop(self) -> None:
        if self.nginx is not None:
            with contextlib.suppress(Exception):
                await self.nginx.stop(timeout=3)
            self.nginx.cleanup()
        for n in self.nodes:
            if n.running:
                with contextlib.suppress(Exception):
                    await n.stop(timeout=5)
            n.cleanup()
        if self.redis is not None:
            self.redis.cleanup()


async def start_cluster(
    backend: str, args: argparse.Namespace, size: int = 0, with_nginx: bool = False
) -> Cluster:
    redis = None
    count = {"memory": 1, "redis": 1, "redis2": 2}[backend]
    if backend != "memory":
        redis = await RedisServer().start()
    nodes = [
        ChatNode(redis.url if redis else None, settings=node_settings(args, size))
        for _ in range(count)
    ]
    cluster = Cluster(nodes, redis)
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        if with_nginx:
            cluster.nginx = await Nginx(nodes).start()
        if args.pin:
            servers = cpu_halves()[0]
            for pid in [*(n.pid for n in nodes), *([redis.pid] if redis else [])]:
                pin(pid, servers)
            if cluster.nginx is not None:
                for pid in [cluster.nginx.pid, *children(cluster.nginx.pid)]:
                    pin(pid, servers)
    except BaseException:
        await cluster.stop()
        raise
    return cluster


# -- fill and after_leave ----------------------------------------------------------------------


def ms(t: float | None, t0: float) -> float | None:
    return None if t is None else round((t - t0) * 1000)


async def fill_and_leave(
    backend: str, size: int, args: argparse.Namespace, want: set[str]
) -> dict[str, Any]:
    cluster = await start_cluster(backend, args, size)
    gens = generators(args)
    out: dict[str, Any] = {"backend": backend, "size": size, "nodes": len(cluster.nodes)}
    try:
        async with ChatClient(cluster.urls[0]) as owner:
            created = await owner.create_room(capacity=size, host_seat=False)
        link = format_link(created.link)
        names = split([f"m{i}" for i in range(size)], len(gens))
        cpu0 = cluster.cpu()
        req0 = await cluster.requests()
        gcpu0 = sum(h["cpu_s"] for h in await on_all(gens, "health"))
        t0 = time.monotonic()
        joined = await asyncio.gather(
            *(
                g.call("join", cluster.urls, link, names[k], args.join_concurrency)
                for k, g in enumerate(gens)
            )
        )
        n = sum(j["joined"] for j in joined)
        join_errors = sum((Counter(j["errors"]) for j in joined), Counter())
        all_seen = await on_all(gens, "wait", "members", n, args.timeout)
        keys = await on_all(gens, "wait", "keys", n, args.timeout)
        # The first message after the fill: its sender's key goes to everyone first.
        first_at = time.monotonic()
        first = await gens[0].call("send", 0, "fill-first")
        got = await asyncio.gather(
            *(
                g.call("wait_text", "fill-first", args.timeout, 0 if k == 0 else -1)
                for k, g in enumerate(gens)
            )
        )
        last = [x["last_at"] for x in got if x["last_at"] is not None]
        missing = sum(x["missing"] for x in got)
        t1 = time.monotonic()
        if None in all_seen or None in keys:
            out["lagging"] = [x for lag in await on_all(gens, "lagging", n) for x in lag][:10]
        cpu1 = cluster.cpu()
        req1 = await cluster.requests()
        health = await on_all(gens, "health")
        gen_cpu = sum(h["cpu_s"] for h in health) - gcpu0
        fill = {
            "joined": n,
            "join_errors": dict(join_errors),
            "all_joins_acked_ms": ms(max(j["last_ack"] for j in joined), t0),
            "all_see_all_ms": ms(None if None in all_seen else max(all_seen), t0),
            "keys_settled_ms": ms(None if None in keys else max(keys), t0),
            "first_message_error": first.get("error"),
            "first_message_all_decrypted_ms": ms(max(last), first_at)
            if last and not missing
            else None,
            "first_message_missing": missing,
            **request_report(req0, req1),
            "server_cpu_s": round(sum(cpu1) - sum(cpu0), 2),
            "generator_cpu_s": round(gen_cpu, 2),
            "generator_saturated": gen_cpu / max(t1 - t0, 1e-9) / len(gens) > 0.9,
            "decrypt_failures": sum(h["decrypt_failures"] for h in health),
            "keys_rejected": sum(h["keys_rejected"] for h in health),
            "pushes_refused": dict(sum((Counter(h["pushes_refused"]) for h in health), Counter())),
        }
        if "fill" in want:
            out["fill"] = fill
        if "after_leave" in want and n >= 3:
            out["after_leave"] = await after_leave(cluster, gens, n, args)
    finally:
        await teardown(cluster, gens, out)
    return out


async def teardown(cluster: Cluster, gens: list[Gen], out: dict[str, Any]) -> None:
    """Stop the generators, keep the nodes' warnings in `out`, stop the nodes."""
    for g in gens:
        await g.stop()
    out["node_warnings"] = cluster.warnings()
    await cluster.stop()


async def after_leave(cluster: Cluster, gens: list[Gen], n: int, args: argparse.Namespace) -> dict:
    """Generator 0's first member leaves; its (new) first member sends at once."""
    req0 = await cluster.requests()
    cpu0 = cluster.cpu()
    t0 = time.monotonic()
    await gens[0].call("leave", 1)
    left_at = time.monotonic()
    text = "after-leave"
    sent = await gens[0].call("send", 0, text)
    got = await asyncio.gather(
        *(g.call("wait_text", text, args.timeout, 0 if k == 0 else -1) for k, g in enumerate(gens))
    )
    t1 = time.monotonic()
    receivers_missing = sum(x["missing"] for x in got)
    last = [x["last_at"] for x in got if x["last_at"] is not None]
    report = request_report(req0, await cluster.requests())
    return {
        "members_after_leave": n - 1,
        "leave_ack_ms": ms(left_at, t0),
        "send_ack_ms": ms(sent.get("acked_at"), left_at),
        "send_error": sent.get("error"),
        "all_decrypted_ms": ms(max(last), left_at) if last and not receivers_missing else None,
        "receivers_missing": receivers_missing,
        "decrypt_failures": sum(x["decrypt_failures"] for x in got),
        "server_cpu_s": round(sum(cluster.cpu()) - sum(cpu0), 2),
        "elapsed_ms": ms(t1, t0),
        **report,
    }


# -- node_kill ---------------------------------------------------------------------------------


async def node_kill(run: int, args: argparse.Namespace) -> dict[str, Any]:
    cluster = await start_cluster("redis2", args, with_nginx=True)
    assert cluster.nginx is not None
    gens = generators(args)
    rooms = max(1, args.clients // args.room_size)
    per_gen = split(list(range(rooms)), len(gens))
    out: dict[str, Any] = {"run": run, "clients": rooms * args.room_size, "rooms": rooms}
    try:
        t0 = time.monotonic()
        made = await asyncio.gather(
            *(
                g.call("make_rooms", cluster.nginx.url, len(per_gen[k]), args.room_size, 20)
                for k, g in enumerate(gens)
            )
        )
        out["setup_s"] = round(time.monotonic() - t0, 1)
        out["members_joined"] = sum(m["members"] for m in made)
        out["setup_errors"] = dict(sum((Counter(m["errors"]) for m in made), Counter()))
        settled = await on_all(gens, "wait_rooms_settled", args.settle_timeout)
        if None in settled:
            out["lagging"] = [x for lag in await on_all(gens, "lagging_rooms") for x in lag][:10]
        out["setup_and_keys_settled_s"] = (
            None if None in settled else round(max(settled) - t0, 1)  # type: ignore[type-var]
        )
        held = {n.port: n.connections for n in cluster.nodes}
        victim = max(cluster.nodes, key=lambda n: held[n.port])
        survivor = next(n for n in cluster.nodes if n is not victim)
        out["connections_per_node"] = sorted(held.values(), reverse=True)
        req0 = {n.port: await requests_of(n.url) for n in cluster.nodes}
        cpu0 = {n.port: cpu_seconds(n.pid) for n in cluster.nodes}
        gcpu0 = sum(h["cpu_s"] for h in await on_all(gens, "health"))
        start = time.monotonic() + 1.0
        streams = asyncio.gather(
            *(g.call("stream", start, args.stream_seconds, args.rate) for g in gens)
        )
        await asyncio.sleep(max(0.0, start + args.kill_after - time.monotonic()))
        victim_req = await requests_of(victim.url)
        victim_cpu = cpu_seconds(victim.pid) - cpu0[victim.port]
        await victim.kill()
        killed_at = time.monotonic()
        streamed = await streams
        settled_results = await on_all(gens, "settle", args.settle_timeout)
        gen_cpu = sum(s["cpu_s"] for s in settled_results) - gcpu0
        gen_share = gen_cpu / (time.monotonic() - start) / len(gens)
        survivor_req = await requests_of(survivor.url)
        survivor_cpu = cpu_seconds(survivor.pid) - cpu0[survivor.port]
        back = [at for s in settled_results for at, _ in s["reconnects"] if at >= killed_at]
        reconnected = sum(s["reconnected_members"] for s in settled_results)

        def total(key: str) -> int:
            return sum(int(s[key]) for s in settled_results)

        out.update(
            {
                "victim_connections": held[victim.port],
                "reconnected_members": reconnected,
                "all_back_ms": ms(max(back), killed_at) if back else None,
                "all_back_complete": reconnected >= held[victim.port],
                "sent": sum(s["sent"] for s in streamed),
                "acked": sum(s["acked"] for s in streamed),
                "send_errors": dict(sum((Counter(s["send_errors"]) for s in streamed), Counter())),
                "acked_lost_member_messages": total("lost_member_messages"),
                "acked_lost_distinct_messages": total("lost_distinct_messages"),
                "lost_at_rejoined_members": total("lost_at_rejoined_members"),
                "duplicates": total("duplicates"),
                "decrypt_failures": total("decrypt_failures"),
                "keys_rejected": total("keys_rejected"),
                "rejoined_new_identity": total("rejoined_new_identity"),
                "rooms_ended_for": total("rooms_ended_for"),
                "victim_until_kill": request_report(req0[victim.port], victim_req),
                "survivor": request_report(req0[survivor.port], survivor_req),
                "server_cpu_s": round(victim_cpu + survivor_cpu, 2),
                "generator_cpu_s": round(gen_cpu, 2),
                "generator_cpu_share": round(gen_share, 2),
                "generator_saturated": gen_share > 0.9,
            }
        )
        out["rate_limited"] = (
            out["victim_until_kill"]["rate_limited"] + out["survivor"]["rate_limited"]
        )
        out["unavailable"] = (
            out["victim_until_kill"]["unavailable"] + out["survivor"]["unavailable"]
        )
    finally:
        await teardown(cluster, gens, out)
    return out


# -- report ------------------------------------------------------------------------------------


def table(summary: dict[str, Any]) -> str:
    lines = []
    fills = [r for r in summary.get("rooms", []) if "fill" in r]
    if fills:
        lines += [
            "fill: backend size | joined | joins acked ms | all see all ms | cards admitted ms | "
            "first message decrypted by all ms | "
            "requests (key.send) | rate_limited | unavailable | server cpu s | gen cpu s",
        ]
        for r in fills:
            f = r["fill"]
            lines.append(
                f"  {r['backend']:7} {r['size']:5} | {f['joined']} | {f['all_joins_acked_ms']} | "
                f"{f['all_see_all_ms']} | {f['keys_settled_ms']} | "
                f"{f['first_message_all_decrypted_ms']} | {f['requests_total']} "
                f"({f['requests_by_event'].get('key.send', 0)}) | {f['rate_limited']} | "
                f"{f['unavailable']} | {f['server_cpu_s']} | {f['generator_cpu_s']}"
                + (" (generator saturated)" if f["generator_saturated"] else "")
            )
    leaves = [r for r in summary.get("rooms", []) if "after_leave" in r]
    if leaves:
        lines.append(
            "after_leave: backend size | send ack ms | all decrypted ms | missing | "
            "decrypt failures | refused by code"
        )
        for r in leaves:
            a = r["after_leave"]
            lines.append(
                f"  {r['backend']:7} {r['size']:5} | {a['send_ack_ms']} | {a['all_decrypted_ms']} | "
                f"{a['receivers_missing']} | {a['decrypt_failures']} | {a['refused_by_code']}"
            )
    kills = summary.get("node_kill", [])
    if kills:
        lines.append(
            "node_kill: run clients | on victim | back | all back ms | acked | lost | lost "
            "(rejoined) | dups | decrypt failures | rejoined | rate_limited | unavailable"
        )
        for k in kills:
            lines.append(
                f"  {k['run']} {k['clients']} | {k['victim_connections']} | "
                f"{k['reconnected_members']} | {k['all_back_ms']} | {k['acked']} | "
                f"{k['acked_lost_member_messages']} | {k['lost_at_rejoined_members']} | "
                f"{k['duplicates']} | {k['decrypt_failures']} | {k['rejoined_new_identity']} | "
                f"{k['rate_limited']} | {k['unavailable']}"
                + (" (generator saturated)" if k["generator_saturated"] else "")
            )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    want = set(args.only.split(","))
    unknown = want - {"fill", "after_leave", "node_kill"}
    if unknown:
        raise SystemExit(f"unknown scenarios: {sorted(unknown)}")
    if args.pin and args.procs <= 1:
        pin(0, cpu_halves()[1])
    summary: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "pinned": args.pin, "generators": args.procs},
        "command": "python bench/scale.py " + " ".join(sys.argv[1:]),
    }
    if want & {"fill", "after_leave"}:
        summary["rooms"] = []
        for backend in args.backend.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                result = await fill_and_leave(backend, size, args, want)
                print(json.dumps(result), file=sys.stderr)
                summary["rooms"].append(result)
    if "node_kill" in want:
        summary["node_kill"] = []
        for run in range(1, args.runs + 1):
            result = await node_kill(run, args)
            print(json.dumps(result), file=sys.stderr)
            summary["node_kill"].append(result)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="fill,after_leave,node_kill")
    parser.add_argument("--sizes", default="100,300,500", help="fill: members in the room")
    parser.add_argument("--backend", default="memory,redis", help="memory, redis, redis2")
    parser.add_argument("--join-concurrency", type=int, default=20, help="fill: joins at once")
    parser.add_argument("--clients", type=int, default=500, help="node_kill: clients in all")
    parser.add_argument("--room-size", type=int, default=20, help="node_kill: members per room")
    parser.add_argument("--rate", type=float, default=1.0, help="node_kill: msg/s per room")
    parser.add_argument("--stream-seconds", type=float, default=20.0)
    parser.add_argument("--kill-after", type=float, default=6.0, help="seconds into the stream")
    parser.add_argument("--settle-timeout", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=1, help="node_kill repetitions")
    parser.add_argument("--procs", type=int, default=1, help="generator processes")
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for a step")
    parser.add_argument("--pin", action="store_true")
    args = parser.parse_args()
    quiet_libraries()
    summary = asyncio.run(main_async(args))
    print(json.dumps(summary, indent=1))
    print(table(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
