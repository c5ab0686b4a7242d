"""Cross-node figures for the scale-out: two chatserver nodes on one redis-server.

1. Latency: a sender on node A, a receiver on node B, one room; N messages at a fixed rate; the
   time from `send` to the receiver's decrypted message, p50/p99 (same clock: one process).
2. Redis traffic per node as the rooms it holds grow: traffic flows in R rooms (a sender on node A
   in each); node B holds 1, 10, ... of them (a receiver each); for each step, the pub/sub
   messages each node read (its /metrics `chatserver_pubsub_messages_total`, when present) and
   the bytes its pub/sub connection received (`ss -ti` bytes_received on the node's socket).

    .venv/bin/python bench/crossnode.py [--messages 2000 --rate 200 --rooms 50 --steps 1,10,50]
        [--pin]   # taskset: redis on CPU 0, node A on 0, node B on 1 (2 CPUs or more)

Prints one JSON summary on stdout. Uses the cluster test harness to start the processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chatserver.client import ChatClient, Message  # noqa: E402
from tests.cluster.harness import ChatNode, RedisServer  # noqa: E402
from tests.cluster.scaleout_helpers import (  # noqa: E402
    FAST,
    client_list,
    entries_of,
    metric,
    subscribers,
)

BIG = {**FAST, "rooms_per_connection": 64, "default_capacity": 50}


def pin(pid: int, cpu: int) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(pid, {cpu % (os.cpu_count() or 1)})
    # the node's children (none today) would inherit it


def bytes_received(local_port: int) -> int:
    """bytes_received of the established TCP socket with this local port (ss -ti)."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( sport = :{local_port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    m = re.search(r"bytes_received:(\d+)", out)
    return int(m.group(1)) if m else 0


async def pubsub_port(redis: Any, node: ChatNode, redis_port: int) -> int:
    entries = subscribers(entries_of(node, await client_list(redis), redis_port))
    assert len(entries) == 1, entries
    return int(entries[0]["addr"].rsplit(":", 1)[1])


async def latency(a: ChatNode, b: ChatNode, n: int, rate: float) -> dict[str, Any]:
    async with ChatClient(a.url) as ca, ChatClient(b.url) as cb:
        created = await ca.create_room(listed=True, topic="bench")
        ra = await ca.join(created.link)
        rb = await cb.join(created.link)
        await ra.send("warmup")  # the sender key reaches B before the timed messages
        sent_at: dict[str, float] = {}
        got: dict[str, float] = {}
        done = asyncio.Event()

        async def receive() -> None:
            async for ev in rb.events():
                if isinstance(ev, Message) and ev.text in sent_at:
                    got[ev.text] = time.perf_counter()
                    if len(got) == n:
                        done.set()
                        return

        reader = asyncio.create_task(receive())
        await asyncio.sleep(0.5)
        start = time.perf_counter()
        for i in range(n):
            text = f"m{i}"
            sent_at[text] = time.perf_counter()
            await ra.send(text)
            delay = start + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        elapsed = time.perf_counter() - start
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 15)
        reader.cancel()
        lat = sorted((got[t] - sent_at[t]) * 1000 for t in got)
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
    return {
        "messages": n,
        "received": len(lat),
        "target_rate_per_s": rate,
        "achieved_rate_per_s": round(n / elapsed, 1),
        "p50_ms": round(q[49], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(lat[-1], 2) if lat else None,
    }


async def traffic(
    redis_server: RedisServer, a: ChatNode, b: ChatNode, rooms: int, steps: list[int], rate: float
) -> list[dict[str, Any]]:
    """Traffic in `rooms` rooms from senders on A; B holds `steps[i]` of them."""
    redis = redis_server.client(decode_responses=True)
    senders: list[ChatClient] = []
    receivers: list[ChatClient] = []
    results = []
    try:
        links, send_rooms = [], []
        for i in range(rooms):
            if i % 60 == 0:
                senders.append(ChatClient(a.url))
                await senders[-1].connect()
            client = senders[-1]
            created = await client.create_room(listed=True, topic=f"t{i}")
            links.append(created.link)
            send_rooms.append(await client.join(created.link))
        held = 0
        for step in steps:
            while held < step:
                if held % 60 == 0:
                    receivers.append(ChatClient(b.url))
                    await receivers[-1].connect()
                await receivers[-1].join(links[held])
                held += 1
            await asyncio.sleep(1.0)  # keys and joins settle
            port_a = await pubsub_port(redis, a, redis_server.port)
            port_b = await pubsub_port(redis, b, redis_server.port)
            before = {
                "a_msgs": await metric(a, "chatserver_pubsub_messages_total"),
                "b_msgs": await metric(b, "chatserver_pubsub_messages_total"),
                "a_bytes": bytes_received(port_a),
                "b_bytes": bytes_received(port_b),
            }
            # `rate` messages per second in total, round robin over all rooms, for 3 s.
            total = int(rate * 3)
            start = time.perf_counter()
            for i in range(total):
                await send_rooms[i % rooms].send(f"x{i}")
                delay = start + (i + 1) / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.sleep(0.5)
            after = {
                "a_msgs": await metric(a, "chatserver_pubsub_messages_total"),
                "b_msgs": await metric(b, "chatserver_pubsub_messages_total"),
                "a_bytes": bytes_received(port_a),
                "b_bytes": bytes_received(port_b),
            }

            def delta(key: str, after: dict[str, Any] = after, before: dict = before) -> Any:
                if after[key] is None or before[key] is None:
                    return None
                return after[key] - before[key]

            results.append(
                {
                    "rooms_with_traffic": rooms,
                    "rooms_held_by_b": step,
                    "messages_sent": total,
                    "node_a_pubsub_msgs": delta("a_msgs"),
                    "node_b_pubsub_msgs": delta("b_msgs"),
                    "node_a_pubsub_bytes": delta("a_bytes"),
                    "node_b_pubsub_bytes": delta("b_bytes"),
                }
            )
    finally:
        for c in senders + receivers:
            with contextlib.suppress(Exception):
                await c.close(leave=False)
        await redis.aclose()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--steps", default="1,10,50")
    parser.add_argument("--traffic-rate", type=float, default=200)
    parser.add_argument("--pin", action="store_true")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]

    redis_server = RedisServer()
    a = ChatNode(redis_server.url, settings=BIG, name="node-a")
    b = ChatNode(redis_server.url, settings=BIG, name="node-b")
    try:
        await redis_server.start()
        await asyncio.gather(a.start(), b.start())
        if args.pin:
            pin(redis_server.pid, 0)
            pin(a.pid, 0)
            pin(b.pid, 1)
        summary = {
            "machine": {"cpus": os.cpu_count(), "pinned": args.pin},
            "latency_a_to_b": await latency(a, b, args.messages, args.rate),
            "traffic_per_node": await traffic(
                redis_server, a, b, args.rooms, steps, args.traffic_rate
            ),
        }
        print(json.dumps(summary, indent=2))
    finally:
        for node in (a, b):
            with contextlib.suppress(Exception):
                await node.stop(timeout=5)
            node.cleanup()
        redis_server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
