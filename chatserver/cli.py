"""The `chatserver` command: serve a node, and the command-line client (room create, say, listen)."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from chatserver.config import Settings
from chatserver.logs import configure


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatserver",
        description="Anonymous, end-to-end encrypted chat rooms for peer support and therapy.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run a node",
        description="Run a node. Every flag can also be set as CHATSERVER_<NAME> in the environment.",
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8080)")
    serve.add_argument(
        "--redis", dest="redis_url", metavar="URL", help="Redis URL; without it the node is alone"
    )
    serve.add_argument("--web-dir", help="directory of the built web client")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve)

    _add_therapist_commands(commands)

    from chatserver import client_cli

    client_cli.add_commands(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from chatserver.app import create_app
    from chatserver.gateway.eventloop import new_event_loop

    settings = Settings.from_env(
        host=args.host,
        port=args.port,
        redis_url=args.redis_url,
        web_dir=args.web_dir,
        log_level=args.log_level,
    )
    configure(settings.log_level)
    app = create_app(settings)
    tune_gc()
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        # aiohttp closes a connection that has not sent a whole request (line and headers) by
        # then, and an idle keep-alive: without it, a slowloris holds descriptors for 75 s each.
        keepalive_timeout=settings.header_timeout_s,
        print=lambda line: print(line, file=sys.stderr),
        shutdown_timeout=settings.shutdown_grace_s,
        loop=new_event_loop(),
    )
    return 0


def _add_therapist_commands(commands: Any) -> None:
    therapist = commands.add_parser(
        "therapist",
        help="issue and revoke verified-therapist credentials",
        description=(
            "Verified therapists, without an accounts table: credentials signed by the server key "
            "(CHATSERVER_KEY_FILE, or <CHATSERVER_STATE_DIR>/server.key; created on first use). "
            "Revocations go to Redis (--redis or CHATSERVER_REDIS_URL) for every node, and to the "
            "local file next to the key for a single embedded node."
        ),
    )
    sub = therapist.add_subparsers(dest="therapist_command", required=True, metavar="ACTION")
    issue = sub.add_parser("issue", help="issue a credential (printed once)")
    issue.add_argument("--name", required=True, help='display name, e.g. "Dr. A. Rao"')
    issue.add_argument("--days", type=float, default=90.0, help="validity in days (default 90)")
    issue.set_defaults(func=_therapist_issue)
    revoke = sub.add_parser("revoke", help="revoke a credential by id, on every node")
    revoke.add_argument("id", help="the credential id printed by `issue`")
    revoke.add_argument("--redis", dest="redis_url", metavar="URL")
    revoke.set_defaults(func=_therapist_revoke)
    listing = sub.add_parser("list-revoked", help="list revoked credential ids")
    listing.add_argument("--redis", dest="redis_url", metavar="URL")
    listing.set_defaults(func=_therapist_list_revoked)


def _therapist_issue(args: argparse.Namespace) -> int:
    import time

    from chatserver import credentials
    from chatserver.app import server_key_for

    settings = Settings.from_env()
    try:
        token, cred = credentials.issue(server_key_for(settings), args.name, args.days, time.time())
    except credentials.CredentialError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(cred.expires_at))
    print(f"id:       {cred.cred_id}")
    print(f"name:     {cred.name}")
    print(f"expires:  {expires}")
    print("credential (give it to the therapist privately; it is shown only this once):")
    print(token)
    return 0


def _revocation_targets(args: argparse.Namespace) -> tuple[Settings, Any]:
    from chatserver.credentials import revocation_path

    settings = Settings.from_env(redis_url=getattr(args, "redis_url", None))
    return settings, revocation_path(settings)


def _therapist_revoke(args: argparse.Namespace) -> int:
    import asyncio
    import re
    import time

    from chatserver import credentials

    cred_id = args.id.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{32}", cred_id):
        print("error: a credential id is 32 hexadecimal characters", file=sys.stderr)
        return 2
    settings, path = _revocation_targets(args)
    credentials.append_revoked_file(path, cred_id)
    if settings.redis_url:
        # Kept until long after any credential could expire (the id alone does not say when).
        until = time.time() + 3660 * credentials.DAY_S
        asyncio.run(_redis_denylist(settings, "add", cred_id, until))
    print(f"revoked {cred_id}")
    return 0


def _therapist_list_revoked(args: argparse.Namespace) -> int:
    import asyncio

    from chatserver import credentials

    settings, path = _revocation_targets(args)
    ids = set(credentials.read_revoked_file(path))
    if settings.redis_url:
        ids |= set(asyncio.run(_redis_denylist(settings, "items", "", 0.0)))
    for cred_id in sorted(ids):
        print(cred_id)
    return 0


async def _redis_denylist(settings: Settings, op: str, item: str, until: float) -> list[str]:
    import time

    from chatserver import credentials
    from chatserver.backends.redis.conn import Keys, connect
    from chatserver.backends.redis.denylist import RedisDenylist

    redis = connect(settings.redis_url or "", settings.redis_cluster)
    try:
        denylist = RedisDenylist(redis, Keys(settings.redis_prefix))
        if op == "add":
            await denylist.add(credentials.REVOKED, item, until)
            return []
        return await denylist.items(credentials.REVOKED, time.time())
    finally:
        await redis.aclose()


def tune_gc() -> None:
    """Move what start-up built out of the collector's sight, and collect the young generation less
    often: full passes over a large heap are what stretch the latency tail (docs/performance.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
