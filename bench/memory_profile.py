"""What an idle Socket.IO connection holds on a chatserver node: tracemalloc and gc, per connection.

    .venv/bin/python bench/memory_profile.py                      # 2,000 connections, top 25 sites
    .venv/bin/python bench/memory_profile.py -n 5000 --top 40 --tracebacks 8 --frames 12

Starts one node in a child process (the bench environment of `bench/run.py`, uvloop as `chatserver
serve` runs it) with tracemalloc on, then does what the `memory` scenario of `bench/run.py` does:
50 warm-up connections, a snapshot, N idle connections (websocket only, msgpack parser, opened with
`bench/wsclient.py`'s FastClient), two seconds, a second snapshot. Prints, per connection:

- the traced bytes (tracemalloc's total delta / N) and the child's RSS delta / N (RSS includes
  tracemalloc's own bookkeeping, so it is higher than `bench/run.py`'s figure);
- the top allocation sites grouped by file:line (bytes and blocks per connection);
- with `--tracebacks K`, the K largest sites grouped by traceback (`--frames` deep), to see which
  call chain allocated them;
- the gc-tracked objects per connection by type (Tasks, Futures, TimerHandles, dicts, ...).

The node's control routes (`/_profile/mark`, `/_profile/report`) exist only in this child.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

THIS_FILE = str(Path(__file__).resolve())


# -- the node (child process) ----------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def object_counts() -> Counter[str]:
    gc.collect()
    counts: Counter[str] = Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        counts[f"{kind.__module__}.{kind.__qualname__}"] += 1
    return counts


def _filtered(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    """Without the profiler's own allocations (the first snapshot, this module)."""
    return snapshot.filter_traces(
        (
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, THIS_FILE),
            tracemalloc.Filter(False, "<unknown>"),
        )
    )


def serve(port: int, frames: int) -> None:
    tracemalloc.start(frames)
    from aiohttp import web

    from chatserver.app import create_app
    from chatserver.cli import tune_gc
    from chatserver.config import Settings
    from chatserver.gateway.eventloop import new_event_loop

    settings = Settings.from_env(host="127.0.0.1", port=port)
    app = create_app(settings)
    state: dict[str, Any] = {}

    async def mark(request: web.Request) -> web.Response:
        # The snapshot first: its traces are objects too, counted in both object counts.
        state["snapshot"] = _filtered(tracemalloc.take_snapshot())
        state["objects"] = object_counts()
        state["rss"] = rss_bytes(os.getpid())
        return web.json_response({"ok": True})

    async def report(request: web.Request) -> web.Response:
        n = int(request.query["n"])
        top = int(request.query.get("top", "25"))
        tracebacks = int(request.query.get("tracebacks", "0"))
        objects = object_counts()
        rss = rss_bytes(os.getpid())
        after = _filtered(tracemalloc.take_snapshot())
        before: tracemalloc.Snapshot = state["snapshot"]
        by_line = after.compare_to(before, "lineno")
        total = sum(s.size_diff for s in by_line)
        sites = [
            {
                "site": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
                "bytes_per_conn": round(s.size_diff / n, 1),
                "blocks_per_conn": round(s.count_diff / n, 2),
            }
            for s in by_line[:top]
        ]
        chains = []
        if tracebacks:
            for s in after.compare_to(before, "traceback")[:tracebacks]:
                chains.append(
                    {
                        "bytes_per_conn": round(s.size_diff / n, 1),
                        "blocks_per_conn": round(s.count_diff / n, 2),
                        # innermost (the allocation) first, the loop's frames left out
                        "traceback": [
                            f"{_short(f.filename)}:{f.lineno}"
                            for f in reversed(s.traceback)
                            if f.filename != THIS_FILE and "/asyncio/" not in f.filename
                        ],
                    }
                )
        deltas = objects - state["objects"]
        per_type = [
            {"type": name, "per_conn": round(count / n, 2)}
            for name, count in deltas.most_common(top)
            if count >= n // 10
        ]
        return web.json_response(
            {
                "connections": n,
                "traced_bytes_per_conn": round(total / n, 1),
                "rss_bytes_per_conn": round((rss - state["rss"]) / n, 1),
                "sites": sites,
                "tracebacks": chains,
                "objects": per_type,
                "gc_objects_per_conn": round(sum(deltas.values()) / n, 2),
            }
        )

    app.router.add_get("/_profile/mark", mark)
    app.router.add_get("/_profile/report", report)
    tune_gc()
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=lambda line: None,
        loop=new_event_loop(),
    )


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3", str(ROOT) + "/"):
        if marker in filename:
            rest = filename.split(marker, 1)[1]
            return rest if marker != "/lib/python3" else "stdlib/" + rest.split("/", 1)[1]
    return filename


# -- the generator (parent process) ----------------------------------------------------------------


def start_node(port: int, frames: int, bench_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, **bench_env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, THIS_FILE, "--serve", str(port), "--frames", str(frames)], env=env
    )


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    from run import BENCH_ENV, free_port, gather_limited
    from wsclient import FastClient

    port = free_port()
    proc = start_node(port, args.frames, BENCH_ENV)
    url = f"http://127.0.0.1:{port}"
    clients: list[FastClient] = []
    try:
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, url, proc)
            warm = [FastClient(url) for _ in range(50)]
            await gather_limited([c.open() for c in warm])
            await asyncio.sleep(1.0)
            async with http.get(url + "/_profile/mark") as resp:
                assert resp.status == 200
            clients = [FastClient(url) for _ in range(args.connections)]
            t0 = time.monotonic()
            await gather_limited([c.open() for c in clients])
            connect_s = time.monotonic() - t0
            await asyncio.sleep(2.0)
            query = f"n={args.connections}&top={args.top}&tracebacks={args.tracebacks}"
            async with http.get(
                url + "/_profile/report?" + query, timeout=aiohttp.ClientTimeout(total=600)
            ) as resp:
                out: dict[str, Any] = await resp.json()
            out["connect_s"] = round(connect_s, 1)
            for c in [*warm, *clients]:
                await c.close()
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_ready(http: Any, url: str, proc: subprocess.Popen[bytes]) -> None:
    """Start-up under tracemalloc (deep tracebacks) takes a while: up to a minute."""
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError("the node exited")
        try:
            async with http.get(url + "/healthz") as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"node at {url} did not start")


def print_report(out: dict[str, Any]) -> None:
    n = out["connections"]
    print(f"{n} idle connections (opened in {out['connect_s']} s)")
    print(
        f"traced by tracemalloc: {out['traced_bytes_per_conn'] / 1024:.2f} KB per connection; "
        f"RSS delta (with tracemalloc's bookkeeping): {out['rss_bytes_per_conn'] / 1024:.2f} KB"
    )
    print(f"\ntop allocation sites, per connection (file:line):\n{'bytes':>9} {'blocks':>7}  site")
    for s in out["sites"]:
        print(f"{s['bytes_per_conn']:>9.1f} {s['blocks_per_conn']:>7.2f}  {s['site']}")
    if out["tracebacks"]:
        print("\nlargest by call chain (the allocation first, then its callers):")
        for c in out["tracebacks"]:
            print(f"{c['bytes_per_conn']:>9.1f} B {c['blocks_per_conn']:>6.2f} blocks")
            for frame in c["traceback"]:
                print(f"              {frame}")
    print(f"\ngc-tracked objects per connection: {out['gc_objects_per_conn']}")
    for o in out["objects"]:
        print(f"{o['per_conn']:>7.2f}  {o['type']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--connections", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25, help="allocation sites and object types")
    parser.add_argument("--tracebacks", type=int, default=0, help="largest sites by call chain")
    parser.add_argument("--frames", type=int, default=1, help="frames tracemalloc keeps")
    parser.add_argument("--json", type=Path, help="write the report as JSON too")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child: the node
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.frames)
        return
    if args.tracebacks and args.frames < 2:
        args.frames = 10
    out = asyncio.run(measure(args))
    print_report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
