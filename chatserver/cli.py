"""The `chatserver` command: serve a node, and the command-line client (room create, say, listen)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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

    from chatserver import client_cli

    client_cli.add_commands(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from chatserver.app import create_app

    settings = Settings.from_env(
        host=args.host,
        port=args.port,
        redis_url=args.redis_url,
        web_dir=args.web_dir,
        log_level=args.log_level,
    )
    configure(settings.log_level)
    app = create_app(settings)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=lambda line: print(line, file=sys.stderr),
        shutdown_timeout=settings.shutdown_grace_s,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
