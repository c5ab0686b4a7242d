"""Fan-out benchmark: R rooms x M members, one sender per room, real E2EE envelopes, server on one core.

    .venv/bin/python bench/fanout.py --rooms 1 --members 100 --seconds 10

Starts `chatserver serve` pinned to CPU 0 (the load generator takes CPU 1), joins every member with a
real key card, pre-seals envelopes (so sealing does not load the generator), then has each room's sender
send as fast as its ack window allows. Prints deliveries/s and the server's CPU time per delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import cpu_seconds, free_port, wait_ready
from wsclient import RawClient

from chatserver import e2ee
from chatserver.e2ee.seat import sign_seat
from chatserver.protocol.ids import unb64id

ROOT = Path(__file__).resolve().parent.parent


def start_server(port: int, cpu: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CHATSERVER_PORT": str(port),
        "CHATSERVER_MSG_RATE_PER_S": "1000000",
        "CHATSERVER_MSG_BURST": "1000000",
        "CHATSERVER_JOIN_RATE_PER_S": "1000000",
        "CHATSERVER_JOIN_BURST": "1000000",
        "CHATSERVER_CREATE_RATE_PER_S": "1000000",
        "CHATSERVER_CREATE_BURST": "1000000",
        "CHATSERVER_MAX_CAPACITY": "10000",
        "CHATSERVER_DEFAULT_CAPACITY": "10000",
        "CHATSERVER_SEND_QUEUE_MAX": "100000",
        "CHATSERVER_LOG_LEVEL": "warning",
    }
    cmd = ["taskset", "-c", str(cpu), str(ROOT / ".venv/bin/chatserver"), "serve"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def join(client: RawClient, room_id: str) -> e2ee.RoomCrypto:
    identity = e2ee.Identity.generate()
    crypto = e2ee.RoomCrypto(identity, unb64id(room_id))
    nonce = (await client.call("room.challenge", {"room_id": room_id}))["nonce"]
    proof = sign_seat(identity, unb64id(room_id), nonce)
    ack = await client.call(
        "room.join", {"room_id": room_id, "card": crypto.card, "seat_proof": proof}
    )
    assert ack["ok"], ack
    crypto.set_epoch(ack["room"]["epoch"])
    return crypto


async def run(args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, args.server_cpu)
    os.sched_setaffinity(0, {args.client_cpu})
    try:
        await wait_ready(url)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            senders: list[tuple[RawClient, str, list[bytes]]] = []
            receivers: list[RawClient] = []
            for _ in range(args.rooms):
                owner = RawClient(http, url)
                await owner.open()
                created = await owner.call("room.create", {"listed": True, "topic": "bench"})
                room_id = created["room"]["room_id"]
                crypto = await join(owner, room_id)
                envelopes = [crypto.encrypt("x" * args.text) for _ in range(args.prepare)]
                senders.append((owner, room_id, envelopes))
                receivers.append(owner)
                for _ in range(args.members - 1):
                    member = RawClient(http, url)
                    await member.open()
                    await join(member, room_id)
                    receivers.append(member)
            print(f"joined {len(receivers)} members in {args.rooms} rooms", file=sys.stderr)
            for r in receivers:
                r.counting = True
            stop = time.monotonic() + args.seconds
            cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
            sent = await asyncio.gather(
                *(pump(c, rid, envs, stop, args.window) for c, rid, envs in senders)
            )
            elapsed = time.monotonic() - t0
            cpu = cpu_seconds(server.pid) - cpu0
            await asyncio.sleep(0.5)
            deliveries = sum(r.pushes for r in receivers)
            for r in receivers:
                await r.close()
    finally:
        server.terminate()
        server.wait(10)
    return {
        "rooms": args.rooms,
        "members": args.members,
        "sent": sum(sent),
        "deliveries": deliveries,
        "seconds": round(elapsed, 2),
        "deliveries_per_s": round(deliveries / elapsed),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_us_per_delivery": round(cpu / max(deliveries, 1) * 1e6, 2),
    }


async def pump(
    client: RawClient, room_id: str, envelopes: list[bytes], stop: float, window: int
) -> int:
    """Send envelopes with at most `window` unacknowledged, until time is up."""
    inflight: set[asyncio.Future[object]] = set()
    sent = 0
    for env in envelopes:
        if time.monotonic() >= stop:
            break
        if len(inflight) >= window:
            done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            for f in done:
                ack = f.result()
                assert isinstance(ack, dict) and ack.get("ok"), ack
        inflight.add(client.send("msg.send", {"room_id": room_id, "env": env}))
        sent += 1
    if inflight:
        await asyncio.wait(inflight)
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=8, help="unacknowledged sends per sender")
    parser.add_argument("--text", type=int, default=20, help="characters per message")
    parser.add_argument(
        "--prepare", type=int, default=20_000, help="envelopes sealed ahead per room"
    )
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
