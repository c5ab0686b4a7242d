"""Every benchmark scenario against chatserver and the reference peer (Node's socket.io 4.8), alternating.

    .venv/bin/python bench/run.py            # the full suite (about 10 minutes)
    .venv/bin/python bench/run.py --quick    # fewer rounds, shorter runs, smaller populations
    .venv/bin/python bench/run.py --only saturation,latency --rounds 3

Each server under test runs pinned to CPU 0 (`taskset`), this load generator pinned to CPU 1. Both
targets speak the same wire (Engine.IO 4 over websocket, msgpack parser, no permessage-deflate) and the
same events; chatserver gets real E2EE envelopes (sealed ahead of time), the peer plain bytes of the
same size. Every figure is also reported as a ratio to the peer measured in the same run. The
generator reports its own CPU use and says when it saturated (a saturated generator measures itself).

Writes the results as JSON (stdout and `--json`), a table (stderr), plots into `docs/perf/`, and the
table into `docs/performance.md` between the `results` markers with `--write-docs`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from wsclient import FastClient

from chatserver import e2ee
from chatserver.e2ee.seat import sign_seat
from chatserver.protocol.ids import unb64id

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

NODE_PEER = BENCH / "node-peer"
ENVELOPE_TEXT = 20  # characters: seals to a 466-byte envelope (padded)
PAYLOAD_BYTES = 466

BENCH_ENV = {
    "CHATSERVER_MSG_RATE_PER_S": "1000000",
    "CHATSERVER_MSG_BURST": "1000000",
    "CHATSERVER_JOIN_RATE_PER_S": "1000000",
    "CHATSERVER_JOIN_BURST": "1000000",
    "CHATSERVER_CREATE_RATE_PER_S": "1000000",
    "CHATSERVER_CREATE_BURST": "1000000",
    "CHATSERVER_CONTROL_RATE_PER_S": "1000000",
    "CHATSERVER_CONTROL_BURST": "1000000",
    "CHATSERVER_MAX_CAPACITY": "20000",
    "CHATSERVER_DEFAULT_CAPACITY": "20000",
    "CHATSERVER_SEND_QUEUE_MAX": "4096",
    "CHATSERVER_LOG_LEVEL": "warning",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


NODE_PEER_MODULES = ("socket.io", "socket.io-msgpack-parser", "@socket.io/redis-adapter", "redis")


def ensure_node_peer() -> None:
    """`npm ci` in bench/node-peer when any of its modules is missing."""
    if not all((NODE_PEER / "node_modules" / m).is_dir() for m in NODE_PEER_MODULES):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_PEER, check=True)


# -- targets ---------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str

    def command(self) -> list[str]:
        if self.name == "node":
            return ["node", str(NODE_PEER / "server.js")]
        return [str(ROOT / ".venv/bin/chatserver"), "serve"]

    def start(
        self, port: int, cpu: int, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        env = {**os.environ, **BENCH_ENV, "PORT": str(port), "CHATSERVER_PORT": str(port)}
        env.update(extra_env or {})
        return subprocess.Popen(
            ["taskset", "-c", str(cpu), *self.command()],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def join(self, client: FastClient, room_id: str) -> Sealer:
        if self.name == "node":
            ack = await client.call("room.join", {"room_id": room_id})
            assert ack["ok"], ack
            return Sealer(None)
        identity = e2ee.Identity.generate()
        crypto = e2ee.RoomCrypto(identity, unb64id(room_id))
        nonce = (await client.call("room.challenge", {"room_id": room_id}))["nonce"]
        ack = await client.call(
            "room.join",
            {
                "room_id": room_id,
                "card": crypto.card,
                "seat_proof": sign_seat(identity, unb64id(room_id), nonce),
            },
        )
        assert ack["ok"], ack
        crypto.set_epoch(ack["room"]["epoch"])
        return Sealer(crypto)


class Sealer:
    """Payloads for one sender: real envelopes for chatserver, random bytes for the peer."""

    def __init__(self, crypto: e2ee.RoomCrypto | None) -> None:
        self.crypto = crypto

    def make(self, n: int) -> list[bytes]:
        if self.crypto is None:
            return [os.urandom(PAYLOAD_BYTES) for _ in range(n)]
        return [self.crypto.encrypt("x" * ENVELOPE_TEXT) for _ in range(n)]


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"server at {url} did not start")


@contextlib.asynccontextmanager
async def running(target: Target, cpu: int, extra_env: dict[str, str] | None = None) -> Any:
    port = free_port()
    proc = target.start(port, cpu, extra_env)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url)
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def gather_limited(coros: list[Awaitable[Any]], limit: int = 64) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(c: Awaitable[Any]) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


@dataclass
class Room:
    room_id: str
    sender: FastClient
    sealer: Sealer
    clients: list[FastClient]


async def setup_rooms(
    target: Target, urls: list[str], rooms: int, members: int, placement: Callable[[int, int], int]
) -> list[Room]:
    """`rooms` rooms of `members` members; member j of room i connects to urls[placement(i, j)]."""
    out: list[Room] = []
    for i in range(rooms):
        owner = FastClient(urls[placement(i, 0)])
        await owner.open()
        created = await owner.call("room.create", {"listed": True, "topic": "bench"})
        assert created["ok"], created
        room_id = created["room"]["room_id"]
        sealer = await target.join(owner, room_id)
        others = [FastClient(urls[placement(i, j)]) for j in range(1, members)]

        async def join(c: FastClient, room_id: str = room_id) -> None:
            await c.open()
            await target.join(c, room_id)

        await gather_limited([join(c) for c in others])
        out.append(Room(room_id, owner, sealer, [owner, *others]))
    return out


async def close_all(rooms: list[Room]) -> None:
    for room in rooms:
        for c in room.clients:
            await c.close()
    await asyncio.sleep(0.2)


class Meter:
    """Server CPU and generator CPU over a window."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def __enter__(self) -> Meter:
        self.cpu0 = [cpu_seconds(p) for p in self.pids]
        self.gen0 = time.process_time()
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.t0
        self.cpu = [cpu_seconds(p) - c for p, c in zip(self.pids, self.cpu0, strict=True)]
        self.gen = (time.process_time() - self.gen0) / self.elapsed

    def generator(self) -> dict[str, Any]:
        return {"generator_cpu": round(self.gen, 2), "generator_saturated": self.gen > 0.9}


# -- scenarios -------------------------------------------------------------------------------------


async def pump(room: Room, envelopes: list[bytes], stop: float, window: int) -> int:
    """Send with at most `window` unacknowledged, until time is up."""
    inflight: set[asyncio.Future[Any]] = set()
    sent = 0
    for env in envelopes:
        if time.monotonic() >= stop:
            break
        if len(inflight) >= window:
            done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            for f in done:
                ack = f.result()
                assert isinstance(ack, dict) and ack.get("ok"), ack
        inflight.add(room.sender.send("msg.send", {"room_id": room.room_id, "env": env}))
        sent += 1
    if inflight:
        await asyncio.wait(inflight)
    return sent


async def settle(clients: list[FastClient], expected: int, limit: float = 3.0) -> int:
    deadline = time.monotonic() + limit
    while True:
        got = sum(c.pushes for c in clients)
        if got >= expected or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.02)


async def quiesce(clients: list[FastClient], quiet: float = 0.5, limit: float = 15.0) -> None:
    """Count pushes until none arrive for `quiet` seconds, then start the counts from zero.

    Joins announce themselves (`member.joined`) to the room; on Redis those pushes may still be
    on their way when the join acks are in (socket.io's adapter emits after its publish).
    """
    for c in clients:
        c.counting = True
    deadline = time.monotonic() + limit
    last = -1
    while time.monotonic() < deadline:
        got = sum(c.pushes for c in clients)
        if got == last:
            break
        last = got
        await asyncio.sleep(quiet)
    for c in clients:
        c.pushes = 0


def profiler(pid: int, args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    """py-spy on the server for most of the run, when --profile names an output file."""
    if not args.profile:
        return None
    return subprocess.Popen(
        [
            str(ROOT / ".venv/bin/py-spy"),
            "record",
            "-p",
            str(pid),
            "-d",
            str(int(args.seconds) - 1),
            "-r",
            "250",
            "-f",
            "raw",
            "-o",
            str(args.profile),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def saturation(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    rooms_n, members = args.sat_rooms, args.sat_members
    async with running(target, args.server_cpu) as (proc, url):
        rooms = await setup_rooms(target, [url], rooms_n, members, lambda i, j: 0)
        per_room = int(args.seconds * 3000 / rooms_n) + 200
        payloads = [r.sealer.make(per_room) for r in rooms]
        clients = [c for r in rooms for c in r.clients]
        for c in clients:
            c.counting = True
        gc.collect()
        spy = profiler(proc.pid, args) if target.name == "chatserver" else None
        with Meter([proc.pid]) as m:
            stop = time.monotonic() + args.seconds
            sent = await asyncio.gather(
                *(pump(r, p, stop, args.window) for r, p in zip(rooms, payloads, strict=True))
            )
            deliveries = await settle(clients, sum(sent) * members)
        if spy is not None:
            spy.wait()
        await close_all(rooms)
    return {
        "rooms": rooms_n,
        "members": members,
        "sent": sum(sent),
        "deliveries": deliveries,
        "deliveries_per_s": round(deliveries / m.elapsed),
        "server_cpu_us_per_delivery": round(m.cpu[0] / max(deliveries, 1) * 1e6, 2),
        "server_cpu_share": round(m.cpu[0] / m.elapsed, 2),
        **m.generator(),
    }


class LatencyProbe:
    """Send times keyed by the payload's last 16 bytes; pushes decoded to find theirs."""

    def __init__(self) -> None:
        self.sent: dict[bytes, float] = {}
        self.samples: list[float] = []
        self.recording = False

    def on_push(self, payload: bytes) -> None:
        now = time.perf_counter()
        if not self.recording:
            return
        try:
            data = msgpack.loads(payload)["data"]
        except Exception:
            return
        if data[0] != "msg":
            return
        t = self.sent.get(bytes(data[1]["env"][-16:]))
        if t is not None:
            self.samples.append(now - t)


async def paced(
    room: Room, envelopes: list[bytes], rate: float, stop: float, probe: LatencyProbe
) -> int:
    """Open-loop sender: one envelope every 1/rate seconds, whatever the acks do."""
    interval = 1.0 / rate
    await asyncio.sleep(random.random() * interval)
    next_at = time.perf_counter()
    sent = 0
    pending: set[asyncio.Future[Any]] = set()
    for env in envelopes:
        now = time.perf_counter()
        if time.monotonic() >= stop:
            break
        if next_at > now:
            await asyncio.sleep(next_at - now)
        probe.sent[env[-16:]] = time.perf_counter()
        future = room.sender.send("msg.send", {"room_id": room.room_id, "env": env})
        pending.add(future)
        future.add_done_callback(pending.discard)
        sent += 1
        next_at += interval
    if pending:
        await asyncio.wait(pending, timeout=5)
    return sent


async def fixed_rate(
    target: Target,
    args: argparse.Namespace,
    rooms_n: int,
    members: int,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    async with running(target, args.server_cpu) as (proc, url):
        rss0 = rss_bytes(proc.pid)
        rooms = await setup_rooms(target, [url], rooms_n, members, lambda i, j: 0)
        rss1 = rss_bytes(proc.pid)
        payloads = [r.sealer.make(int(rate * (seconds + 2)) + 5) for r in rooms]
        probe = LatencyProbe()
        clients = [c for r in rooms for c in r.clients]
        for c in clients:
            c.counting = True
            c.on_push = probe.on_push
        gc.collect()
        warm = min(1.0, seconds / 5)
        stop = time.monotonic() + seconds + warm

        async def record() -> None:
            await asyncio.sleep(warm)
            probe.recording = True

        recorder = asyncio.create_task(record())
        spy = profiler(proc.pid, args) if target.name == "chatserver" else None
        with Meter([proc.pid]) as m:
            sent = await asyncio.gather(
                *(paced(r, p, rate, stop, probe) for r, p in zip(rooms, payloads, strict=True))
            )
            deliveries = await settle(clients, sum(sent) * members)
        await recorder
        if spy is not None:
            spy.wait()
        await close_all(rooms)
    lat = [s * 1000 for s in probe.samples]
    return {
        "rooms": rooms_n,
        "members": members,
        "connections": rooms_n * members,
        "rate_per_room": rate,
        "deliveries_per_s": round(deliveries / m.elapsed),
        "lost": sum(sent) * members - deliveries,
        "samples": len(lat),
        "p50_ms": round(percentile(lat, 50), 2),
        "p90_ms": round(percentile(lat, 90), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "p999_ms": round(percentile(lat, 99.9), 2),
        "max_ms": round(max(lat, default=float("nan")), 2),
        "server_cpu_us_per_delivery": round(m.cpu[0] / max(deliveries, 1) * 1e6, 2),
        "server_cpu_share": round(m.cpu[0] / m.elapsed, 2),
        "rss_per_member_kb": round((rss1 - rss0) / (rooms_n * members) / 1024, 1),
        **m.generator(),
    }


async def latency(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    return await fixed_rate(target, args, 10, 100, 40.0, args.seconds)


async def crowd(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """10,000 connections in rooms of 100, one sender per room (1%), 1 message/s each."""
    rooms_n = args.crowd // 100
    return await fixed_rate(target, args, rooms_n, 100, 1.0, max(args.seconds, 5.0))


async def memory(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    n = args.idle
    async with running(target, args.server_cpu) as (proc, url):
        warm = [FastClient(url) for _ in range(50)]
        await gather_limited([c.open() for c in warm])
        await asyncio.sleep(1.0)
        rss0 = rss_bytes(proc.pid)
        clients = [FastClient(url) for _ in range(n)]
        t0 = time.monotonic()
        await gather_limited([c.open() for c in clients])
        connect_s = time.monotonic() - t0
        await asyncio.sleep(2.0)
        rss1 = rss_bytes(proc.pid)
        for c in [*warm, *clients]:
            await c.close()
    return {
        "connections": n,
        "kb_per_connection": round((rss1 - rss0) / n / 1024, 1),
        "rss_mb": round(rss1 / 2**20, 1),
        "connects_per_s": round(n / connect_s),
    }


async def churn(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """Members join and leave rooms of 20 as fast as their acks come back (joins per second)."""
    rooms_n, churners = 10, args.churners
    async with running(target, args.server_cpu) as (proc, url):
        rooms = await setup_rooms(target, [url], rooms_n, 10, lambda i, j: 0)
        clients = [FastClient(url) for _ in range(churners)]
        await gather_limited([c.open() for c in clients])
        counts = [0] * churners
        stop = time.monotonic() + args.seconds

        async def loop(k: int, c: FastClient) -> None:
            room_id = rooms[k % rooms_n].room_id
            while time.monotonic() < stop:
                await target.join(c, room_id)
                ack = await c.call("room.leave", {"room_id": room_id})
                assert ack["ok"], ack
                counts[k] += 1

        with Meter([proc.pid]) as m:
            await asyncio.gather(*(loop(k, c) for k, c in enumerate(clients)))
        for c in clients:
            await c.close()
        await close_all(rooms)
    joins = sum(counts)
    return {
        "churners": churners,
        "joins": joins,
        "joins_per_s": round(joins / m.elapsed),
        "server_cpu_us_per_join": round(m.cpu[0] / max(joins, 1) * 1e6, 1),
        **m.generator(),
    }


async def join_cost(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """Server CPU per join (a newcomer's join and leave) into one room already holding N members.

    For each N in --join-sizes: one room filled with N idle members, then --join-churners
    newcomers join and leave it as fast as their acks come back, for --join-seconds (or until
    --join-max joins). Members are FastClients: no sender keys are exchanged, so this is the
    server's own cost of a join (the seat, the member list in the ack, member.joined and
    member.left to N members, the epoch bump), not the key shares that follow it.
    """
    out: dict[str, Any] = {"churners": args.join_churners}
    for size in (int(x) for x in args.join_sizes.split(",")):
        async with running(target, args.server_cpu) as (proc, url):
            (room,) = await setup_rooms(target, [url], 1, size, lambda i, j: 0)
            clients = [FastClient(url) for _ in range(args.join_churners)]
            await gather_limited([c.open() for c in clients])
            joins = 0
            stop = time.monotonic() + args.join_seconds

            async def loop(c: FastClient, room_id: str = room.room_id, stop: float = stop) -> None:
                nonlocal joins
                while time.monotonic() < stop and joins < args.join_max:
                    await target.join(c, room_id)
                    ack = await c.call("room.leave", {"room_id": room_id})
                    assert ack["ok"], ack
                    joins += 1

            gc.collect()
            with Meter([proc.pid]) as m:
                await asyncio.gather(*(loop(c) for c in clients))
            for c in clients:
                await c.close()
            await close_all([room])
        out[f"server_cpu_us_per_join_{size}"] = round(m.cpu[0] / max(joins, 1) * 1e6, 1)
        out[f"joins_per_s_{size}"] = round(joins / m.elapsed)
        out[f"generator_cpu_{size}"] = round(m.gen, 2)
        out[f"generator_saturated_{size}"] = m.gen > 0.9
    return out


async def metric(http: aiohttp.ClientSession, url: str, name: str) -> float:
    async with http.get(url + "/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def cross_node(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """One node (memory), one node (Redis), two nodes (Redis), at the same fixed load.

    Both targets, the same layouts: Node's peer on Redis is socket.io's sharded Redis adapter
    (`REDIS_URL`, SPUBLISH/SSUBSCRIBE with a channel per room), chatserver's its Redis bus.
    """
    rooms_n, members, rate = 10, 100, args.cross_rate
    ours = target.name == "chatserver"
    redis_port = free_port()
    redis = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurement
        [
            "taskset",
            "-c",
            str(args.client_cpu),
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis_env = {"CHATSERVER_REDIS_URL" if ours else "REDIS_URL": redis_url}
    out: dict[str, Any] = {"rooms": rooms_n, "members": members, "rate_per_room": rate}
    try:
        await asyncio.sleep(0.3)
        for label, nodes, env in (
            ("single_memory", 1, {}),
            ("single_redis", 1, redis_env),
            ("two_nodes", 2, redis_env),
        ):
            async with contextlib.AsyncExitStack() as stack:
                procs, urls = [], []
                for _ in range(nodes):
                    proc, url = await stack.enter_async_context(
                        running(target, args.server_cpu, env)
                    )
                    procs.append(proc)
                    urls.append(url)
                # Two nodes: rooms 0-4 split half and half, rooms 5-9 only on node 0.
                place = (lambda i, j: 0) if nodes == 1 else (lambda i, j: j % 2 if i < 5 else 0)
                rooms = await setup_rooms(target, urls, rooms_n, members, place)
                payloads = [r.sealer.make(int(rate * (args.seconds + 2)) + 5) for r in rooms]
                probe = LatencyProbe()
                clients = [c for r in rooms for c in r.clients]
                await quiesce(clients)
                for c in clients:
                    c.on_push = probe.on_push
                gc.collect()
                warm = min(1.0, args.seconds / 5)

                async def record(probe: LatencyProbe = probe, warm: float = warm) -> None:
                    await asyncio.sleep(warm)
                    probe.recording = True

                # chatserver's pub/sub reads per node (its /metrics); Node's peer has none.
                read0: list[float] = []
                read1: list[float] = []
                async with aiohttp.ClientSession() as http:
                    if ours:
                        read0 = [
                            await metric(http, u, "chatserver_pubsub_messages_total") for u in urls
                        ]
                    recorder = asyncio.create_task(record())
                    with Meter([p.pid for p in procs]) as m:
                        stop = time.monotonic() + args.seconds + warm
                        sent = await asyncio.gather(
                            *(
                                paced(r, p, rate, stop, probe)
                                for r, p in zip(rooms, payloads, strict=True)
                            )
                        )
                        deliveries = await settle(clients, sum(sent) * members, limit=10.0)
                    await recorder
                    if ours:
                        read1 = [
                            await metric(http, u, "chatserver_pubsub_messages_total") for u in urls
                        ]
                await close_all(rooms)
            lat = [x * 1000 for x in probe.samples]
            entry: dict[str, Any] = {
                "messages_sent": sum(sent),
                "deliveries": deliveries,
                "lost": sum(sent) * members - deliveries,
                "server_cpu_us_per_delivery": round(sum(m.cpu) / max(deliveries, 1) * 1e6, 2),
                "server_cpu_share": round(sum(m.cpu) / m.elapsed, 2),
                "samples": len(lat),
                "p50_ms": round(percentile(lat, 50), 2),
                "p99_ms": round(percentile(lat, 99), 2),
                **m.generator(),
            }
            if nodes == 2:
                entry["rooms_held"] = [10, 5]
                entry["server_cpu_per_node_s"] = [round(c, 2) for c in m.cpu]
                if ours:
                    entry["pubsub_messages_read"] = [
                        round(b - a) for a, b in zip(read0, read1, strict=True)
                    ]
            out[label] = entry
    finally:
        redis.terminate()
        redis.wait(5)
    single = out["single_memory"]["server_cpu_us_per_delivery"]
    out["two_nodes_vs_single_memory"] = round(
        out["two_nodes"]["server_cpu_us_per_delivery"] / single, 2
    )
    out["two_nodes_vs_single_redis"] = round(
        out["two_nodes"]["server_cpu_us_per_delivery"]
        / out["single_redis"]["server_cpu_us_per_delivery"],
        2,
    )
    if ours:
        reads = out["two_nodes"]["pubsub_messages_read"]
        out["redis_reads_ratio_node1_vs_node0"] = round(reads[1] / max(reads[0], 1), 2)
        out["rooms_held_ratio_node1_vs_node0"] = 0.5
    return out


SCENARIOS: dict[str, Callable[[Target, argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "saturation": saturation,
    "latency": latency,
    "memory": memory,
    "crowd": crowd,
    "churn": churn,
    "join_cost": join_cost,
    "cross_node": cross_node,
}


# -- reporting -------------------------------------------------------------------------------------

# (scenario, metric, goal description, goal test on (ours, node) -> met)
GOALS: list[tuple[str, str, str, Callable[[float, float], bool]]] = [
    ("saturation", "deliveries_per_s", ">= 1.0x Node", lambda o, n: o >= n),
    ("saturation", "server_cpu_us_per_delivery", "<= Node", lambda o, n: o <= n),
    ("latency", "p99_ms", "<= Node", lambda o, n: o <= n),
    ("latency", "p50_ms", "(info)", lambda o, n: True),
    ("latency", "server_cpu_us_per_delivery", "(info)", lambda o, n: True),
    ("memory", "kb_per_connection", "<= 15 KB", lambda o, n: o <= 15),
    ("crowd", "p99_ms", "< 100 ms", lambda o, n: o < 100),
    ("churn", "joins_per_s", "(info)", lambda o, n: True),
]


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
        if isinstance(value, bool) or not isinstance(value, int | float):
            out[key] = value if not isinstance(value, bool) else any(r[key] for r in runs)
        else:
            out[key] = round(statistics.median(values), 2)
    return out


def summarise(results: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for scenario, by_target in results.items():
        summary[scenario] = {t: medians(runs) for t, runs in by_target.items() if runs}
    rows = []
    for scenario, key, goal, test in GOALS:
        s = summary.get(scenario, {})
        if "chatserver" not in s:
            continue
        ours = s["chatserver"].get(key)
        node = s.get("node", {}).get(key)
        ratio = round(ours / node, 2) if ours is not None and node else None
        met = test(ours, node if node is not None else float("nan")) if ours is not None else None
        rows.append(
            {
                "scenario": scenario,
                "metric": key,
                "ours": ours,
                "node": node,
                "ratio": ratio,
                "goal": goal,
                "met": met if goal != "(info)" else None,
            }
        )
    joins = summary.get("join_cost", {})
    for key, ours in joins.get("chatserver", {}).items():
        if not key.startswith("server_cpu_us_per_join_"):
            continue
        node = joins.get("node", {}).get(key)
        rows.append(
            {
                "scenario": "join_cost",
                "metric": f"server_cpu_us_per_join, room of {key.rsplit('_', 1)[1]}",
                "ours": ours,
                "node": node,
                "ratio": round(ours / node, 2) if node else None,
                "goal": "(info)",
                "met": None,
            }
        )
    cross = summary.get("cross_node", {})
    cross_ours, cross_node_ = cross.get("chatserver"), cross.get("node") or {}
    if cross_ours:
        # (layout, metric, goal, test on (ours, node)); the ratio column is chatserver / Node.
        for layout, key, goal, test in (
            ("two_nodes", "server_cpu_us_per_delivery", "<= Node", lambda o, n: o <= n),
            ("two_nodes", "p99_ms", "<= Node", lambda o, n: o <= n),
            ("two_nodes", "p50_ms", "(info)", lambda o, n: True),
            ("single_memory", "server_cpu_us_per_delivery", "(info)", lambda o, n: True),
            ("single_redis", "server_cpu_us_per_delivery", "(info)", lambda o, n: True),
        ):
            ours = cross_ours.get(layout, {}).get(key)
            if ours is None:  # a run from before this layout measured it
                continue
            node = cross_node_.get(layout, {}).get(key)
            rows.append(
                {
                    "scenario": "cross_node",
                    "metric": f"{layout} {key}",
                    "ours": ours,
                    "node": node,
                    "ratio": round(ours / node, 2) if node else None,
                    "goal": goal,
                    "met": test(ours, node) if goal != "(info)" and node is not None else None,
                }
            )
        rows.append(
            {
                "scenario": "cross_node",
                "metric": "cpu per delivery, 2 nodes / 1 node",
                "ours": cross_ours["two_nodes_vs_single_memory"],
                "node": cross_node_.get("two_nodes_vs_single_memory"),
                "ratio": None,
                "goal": "<= 1.3x",
                "met": cross_ours["two_nodes_vs_single_memory"] <= 1.3,
            }
        )
        rows.append(
            {
                "scenario": "cross_node",
                "metric": "Redis reads node1/node0 (rooms held 5/10)",
                "ours": cross_ours["redis_reads_ratio_node1_vs_node0"],
                "node": None,
                "ratio": None,
                "goal": "~0.5",
                "met": abs(cross_ours["redis_reads_ratio_node1_vs_node0"] - 0.5) <= 0.1,
            }
        )
    summary["goals"] = rows
    return summary


def table(rows: list[dict[str, Any]]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "met" if v else "NOT met"
        if isinstance(v, float):
            return f"{v:,.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = [
        "| scenario | metric | chatserver | Node socket.io | ratio | goal | |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['metric']} | {fmt(r['ours'])} | {fmt(r['node'])} | "
            f"{fmt(r['ratio'])} | {r['goal']} | {fmt(r['met'])} |"
        )
    return "\n".join(lines)


def plots(
    results: dict[str, dict[str, list[dict[str, Any]]]], summary: dict[str, Any], out: Path
) -> None:
    try:
        import matplotlib
    except ModuleNotFoundError:
        # The figures are printed and written above; plots need the bench extra (make bench-setup).
        print(
            "matplotlib is not installed: no plots (make bench-setup installs it)", file=sys.stderr
        )
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    colors = {"chatserver": "#2b6cb0", "node": "#7a7a7a"}
    if "saturation" in results:
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
        for t, runs in results["saturation"].items():
            xs = range(1, len(runs) + 1)
            a.plot(xs, [r["deliveries_per_s"] for r in runs], "o-", color=colors[t], label=t)
            b.plot(
                xs, [r["server_cpu_us_per_delivery"] for r in runs], "o-", color=colors[t], label=t
            )
        a.set(title="Fan-out at saturation (10 x 100)", xlabel="round", ylabel="deliveries/s")
        b.set(title="Server CPU per delivery", xlabel="round", ylabel="µs")
        a.set_ylim(bottom=0)
        b.set_ylim(bottom=0)
        a.legend()
        fig.tight_layout()
        fig.savefig(out / "throughput.png", dpi=110)
        plt.close(fig)
    for scenario, title in (
        ("latency", "10 x 100, 40 msg/s per room"),
        ("crowd", "10,000 connections, 1% senders"),
    ):
        if scenario not in summary:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.6))
        labels = ["p50_ms", "p90_ms", "p99_ms", "p999_ms"]
        width = 0.38
        for k, (t, s) in enumerate(summary[scenario].items()):
            xs = [i + (k - 0.5) * width for i in range(len(labels))]
            ax.bar(xs, [s[x] for x in labels], width, color=colors[t], label=t)
        ax.set_xticks(range(len(labels)), ["p50", "p90", "p99", "p99.9"])
        ax.set(title=f"Delivery latency ({title})", ylabel="ms")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"{scenario}.png", dpi=110)
        plt.close(fig)


def write_docs(summary: dict[str, Any], meta: dict[str, Any], path: Path) -> None:
    text = path.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    block = (
        f"{start}\n"
        f"Run `{meta['command']}` on {meta['date']} ({meta['machine']}); medians of "
        f"{meta['rounds']} alternating rounds.\n\n{table(summary['goals'])}\n{end}"
    )
    if start in text and end in text:
        text = text.split(start)[0] + block + text.split(end, 1)[1]
    else:
        text += "\n" + block + "\n"
    path.write_text(text)


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} vCPU {model}, Python {platform.python_version()}, Node {node}"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    os.sched_setaffinity(0, {args.client_cpu})
    ensure_node_peer()
    targets = [Target("chatserver"), Target("node")]
    only = args.only.split(",") if args.only else list(SCENARIOS)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for scenario in only:
        fn = SCENARIOS[scenario]
        results[scenario] = {"chatserver": [], "node": []}
        rounds = (
            1
            if scenario in ("memory", "crowd", "cross_node", "churn", "join_cost")
            else args.rounds
        )
        for k in range(rounds):
            order = targets if k % 2 == 0 else targets[::-1]
            for target in order:
                r = await fn(target, args)
                print(f"{scenario} {target.name} round {k + 1}: {json.dumps(r)}", file=sys.stderr)
                results[scenario][target.name].append(r)
    return {"results": results}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter, smaller")
    parser.add_argument(
        "--only", default="", help="comma-separated scenarios: " + ",".join(SCENARIOS)
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--window", type=int, default=16, help="unacknowledged sends per room")
    parser.add_argument("--sat-rooms", type=int, default=10)
    parser.add_argument("--sat-members", type=int, default=100)
    parser.add_argument(
        "--idle", type=int, default=5000, help="connections for the memory scenario"
    )
    parser.add_argument(
        "--crowd", type=int, default=10000, help="connections for the crowd scenario"
    )
    parser.add_argument("--churners", type=int, default=100)
    parser.add_argument(
        "--join-sizes", default="10,100,400", help="join_cost: members already in the room"
    )
    parser.add_argument("--join-churners", type=int, default=20, help="join_cost: newcomers")
    parser.add_argument("--join-seconds", type=float, default=10.0, help="join_cost: per size")
    parser.add_argument("--join-max", type=int, default=20000, help="join_cost: joins per size")
    parser.add_argument("--cross-rate", type=float, default=20.0, help="messages/s per room")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--json", type=Path, default=ROOT / "docs/perf/results.json")
    parser.add_argument("--plots", type=Path, default=ROOT / "docs/perf")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy raw profile of chatserver (saturation, latency, crowd: run one of them)",
    )
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 3)
        args.seconds = min(args.seconds, 4.0)
        args.idle = min(args.idle, 2000)
        args.crowd = min(args.crowd, 3000)
    started = time.strftime("%Y-%m-%d %H:%M")
    out = asyncio.run(main_async(args))
    summary = summarise(out["results"])
    meta = {
        "command": "python bench/run.py " + " ".join(sys.argv[1:]),
        "date": started,
        "machine": machine(),
        "rounds": args.rounds,
    }
    report = {"meta": meta, "summary": summary, "runs": out["results"]}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(json.dumps({"meta": meta, "summary": summary}, indent=1))
    print(table(summary["goals"]), file=sys.stderr)
    plots(out["results"], summary, args.plots)
    if args.write_docs:
        write_docs(summary, meta, ROOT / "docs/performance.md")


if __name__ == "__main__":
    main()
