"""Sharded pub/sub figures on a 3-master Redis Cluster: two chatserver nodes, rooms on every shard.

1. A quiet room's first message across nodes: a sender on node A, a receiver on node B in each of
   N rooms (spread evenly over the shards); both nodes idle for `--idle` seconds before each
   message; the time from `send` to the receiver's decrypted message, p50/p99 (one clock).
2. An idle node's CPU: node B, holding those N rooms, nothing sent, over `--cpu-seconds`
   (/proc/<pid>/stat utime + stime), as a percentage of one core.

    .venv/bin/python bench/cluster_pubsub.py [--rooms 100 --idle 0.3 --cpu-seconds 10]

Prints one JSON summary on stdout. Uses the cluster test harness to start the processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cluster.harness import ChatNode, RedisCluster  # noqa: E402
from tests.cluster.test_cluster_pubsub import (  # noqa: E402
    SETTINGS,
    idle_cpu_percent,
    quantile,
    quiet_first_messages,
    rooms_on_every_shard,
)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cluster = RedisCluster()
    # Heartbeats (presence touches) are the node's own periodic work: out of the CPU figure.
    settings = {**SETTINGS, "heartbeat_interval_s": 60, "presence_ttl_s": 300}
    nodes = [ChatNode(cluster.url, settings={**settings, "redis_cluster": True}) for _ in "ab"]
    try:
        await cluster.start()
        await asyncio.gather(*(node.start() for node in nodes))
        a, b = nodes
        rooms = await rooms_on_every_shard(cluster, a, b, per_shard=-(-args.rooms // 3))
        try:
            pairs = rooms.pairs[: args.rooms]
            lat = await quiet_first_messages(pairs, rounds=1, idle_s=args.idle)
            await asyncio.sleep(1.0)
            cpu = await idle_cpu_percent(b, args.cpu_seconds)
        finally:
            await rooms.close()
    finally:
        for node in nodes:
            if node.running:
                await node.stop(timeout=5)
            node.cleanup()
        cluster.cleanup()
    return {
        "rooms": len(pairs),
        "shards": {str(p): sum(1 for x in pairs if x.shard == p) for p in cluster.ports},
        "idle_s": args.idle,
        "first_message_p50_ms": round(quantile(lat, 50), 2),
        "first_message_p99_ms": round(quantile(lat, 99), 2),
        "first_message_max_ms": round(max(lat), 2),
        "idle_cpu_seconds": args.cpu_seconds,
        "idle_node_cpu_percent": round(cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=100, help="quiet rooms (first messages)")
    parser.add_argument("--idle", type=float, default=0.3, help="quiet before each message, s")
    parser.add_argument("--cpu-seconds", type=float, default=10.0, help="idle CPU window, s")
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
