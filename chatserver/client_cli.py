"""Command-line client: `chatserver room create`, `chatserver say`, `chatserver listen`.

Exit codes: 0 success; 1 refusal, connection failure or timeout; 2 usage (bad arguments or a
bad link). Plaintext goes to the listener's stdout only; nothing here prints keys or tokens
(a room link is the room's capability: `room create` prints it because that is its job).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from chatserver.client import (
    ChatClient,
    ChatError,
    DecryptFailed,
    KeyRejected,
    Message,
    Reconnected,
    Room,
    RoomEnded,
)
from chatserver.links import LinkError, RoomLink, parse_link, server_url

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def add_commands(commands: Any) -> None:
    """Register `room create`, `say` and `listen` on the `chatserver` subparsers."""
    room = commands.add_parser(
        "room",
        help="manage rooms (create)",
        description="Manage rooms on a chatserver node.",
    )
    room_commands = room.add_subparsers(dest="room_command", required=True, metavar="ACTION")
    create = room_commands.add_parser(
        "create",
        help="create a room and print its link",
        description=(
            "Create a room and print its link on stdout. A private room's link carries its secret "
            "after '#' (the server never sees it): share it only with those you invite. With "
            "--host-link it also prints a host link (second line) that takes the host seat, to "
            "moderate the room: keep it to yourself. An empty room expires after the server's empty grace (10 minutes by default)."
        ),
    )
    create.add_argument("server", metavar="SERVER_URL", help="e.g. http://127.0.0.1:8080")
    create.add_argument(
        "--listed", action="store_true", help="list the room in the public directory"
    )
    create.add_argument("--topic", help="directory topic (required with --listed)")
    create.add_argument(
        "--host-link",
        action="store_true",
        help="also print a link that takes the room's host seat, to moderate it",
    )
    create.add_argument(
        "--title", help="room title, encrypted with the link secret (private rooms)"
    )
    create.add_argument("--capacity", type=int, help="maximum number of members")
    create.set_defaults(func=_room_create)

    say = commands.add_parser(
        "say",
        help="send one message to a room",
        description=(
            "Join a room by its link, send one end-to-end encrypted message, wait for the "
            "server's acknowledgement and leave. Exits 0 only when the message was accepted."
        ),
    )
    say.add_argument("link", metavar="LINK", help="the room link")
    say.add_argument("text", metavar="TEXT", help="the message")
    say.add_argument("--name", metavar="NICK", help="nickname (default: a random pseudonym)")
    say.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="give up after S seconds (30)"
    )
    say.set_defaults(func=_say)

    listen = commands.add_parser(
        "listen",
        help="print a room's messages",
        description=(
            "Join a room by its link and print every message from others as it arrives, "
            "'[HH:MM:SS] pseudonym: text' or one JSON object per line with --json. A line on "
            "stderr says when the room is joined (with its safety code). Exits 0 after --count "
            "messages or when --timeout elapses (1 if --count messages did not arrive in time)."
        ),
    )
    listen.add_argument("link", metavar="LINK", help="the room link")
    listen.add_argument("--count", type=int, metavar="N", help="exit after N messages")
    listen.add_argument("--timeout", type=float, metavar="S", help="exit after S seconds")
    listen.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per message: {"seq", "ts", "sender", "pseudonym", "text"}',
    )
    listen.add_argument("--name", metavar="NICK", help="nickname (default: a random pseudonym)")
    listen.set_defaults(func=_listen)


def _err(text: str) -> None:
    print(f"chatserver: {text}", file=sys.stderr, flush=True)


def _run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130


def _link(text: str) -> RoomLink | None:
    try:
        return parse_link(text)
    except LinkError as exc:
        _err(f"bad link: {exc}")
        return None


async def _guarded(work: Callable[[], Awaitable[int]], limit: float | None) -> int:
    """Run `work`, turning refusals, connection failures and the timeout into exit 1."""
    try:
        async with asyncio.timeout(limit):
            return await work()
    except ChatError as exc:
        if exc.code == "unreachable":
            _err(exc.message)
        else:
            _err(f"refused: {exc.code}: {exc.message}")
        return EXIT_FAIL
    except TimeoutError:
        _err(f"timed out after {limit:g} s")
        return EXIT_FAIL


# --- room create -----------------------------------------------------------------------------


def _room_create(args: argparse.Namespace) -> int:
    try:
        url = server_url(args.server)
    except LinkError as exc:
        _err(f"bad server URL: {exc}")
        return EXIT_USAGE
    if args.listed and not args.topic:
        _err("a listed room needs --topic")
        return EXIT_USAGE
    if args.topic and not args.listed:
        _err("--topic is for listed rooms (add --listed)")
        return EXIT_USAGE
    if args.title and args.listed:
        _err("--title is for private rooms (a listed room has only its topic)")
        return EXIT_USAGE

    async def work() -> int:
        async with ChatClient(url) as client:
            created = await client.create_room(
                listed=args.listed,
                topic=args.topic,
                title=args.title,
                capacity=args.capacity,
                host_seat=args.host_link,
            )
        print(created.link, flush=True)
        if created.host_link is not None:
            print(f"host link (keep it private; it takes the host seat): {created.host_link}")
        _err(
            "the room expires if nobody joins within the server's empty grace "
            "(10 minutes by default)"
        )
        return EXIT_OK

    return _run(lambda: _guarded(work, 30.0))


# --- say -------------------------------------------------------------------------------------


def _say(args: argparse.Namespace) -> int:
    link = _link(args.link)
    if link is None:
        return EXIT_USAGE
    if not args.text:
        _err("the message is empty")
        return EXIT_USAGE

    async def work() -> int:
        async with ChatClient(link.server_url) as client:
            room = await client.join(link, nickname=args.name)
            await room.send(args.text)
            with contextlib.suppress(ChatError):
                await room.leave()
        return EXIT_OK

    return _run(lambda: _guarded(work, args.timeout))


# --- listen ----------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Neutralise control characters (terminal escapes) in text from other members."""
    return "".join(ch if ch.isprintable() or ch == " " else f"\\u{ord(ch):04x}" for ch in text)


def _line(msg: Message, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "seq": msg.seq,
                "ts": msg.ts,
                "sender": msg.sender_id,
                "pseudonym": msg.pseudonym,
                "text": msg.text,
            }
        )
    clock = time.strftime("%H:%M:%S", time.localtime(msg.ts / 1000))
    return f"[{clock}] {_clean(msg.pseudonym)}: {_clean(msg.text)}"


def _listen(args: argparse.Namespace) -> int:
    link = _link(args.link)
    if link is None:
        return EXIT_USAGE
    if args.count is not None and args.count < 1:
        _err("--count must be at least 1")
        return EXIT_USAGE
    if args.timeout is not None and args.timeout <= 0:
        _err("--timeout must be positive")
        return EXIT_USAGE

    async def work() -> int:
        async with ChatClient(link.server_url) as client:
            room = await client.join(link, nickname=args.name)
            role = "" if room.role == "member" else f", {room.role}"
            _err(
                f"joined as {_clean(room.pseudonym)}{role} ({len(room.members)} in the room); "
                f"safety code {room.safety_code()}"
            )
            return await _print_messages(room, args)

    async def with_deadline() -> int:
        if args.timeout is None:
            return await _guarded(work, None)
        task = asyncio.ensure_future(_guarded(work, None))
        done, _ = await asyncio.wait({task}, timeout=args.timeout)
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if args.count is None:
            return EXIT_OK
        _err(f"timed out after {args.timeout:g} s before {args.count} messages arrived")
        return EXIT_FAIL

    return _run(with_deadline)


async def _print_messages(room: Room, args: argparse.Namespace) -> int:
    printed = 0
    async for ev in room.events():
        if isinstance(ev, Message):
            if ev.own:
                continue
            sys.stdout.write(_line(ev, args.json) + "\n")
            sys.stdout.flush()
            printed += 1
            if args.count is not None and printed >= args.count:
                return EXIT_OK
        elif isinstance(ev, RoomEnded):
            _err(f"the room ended ({ev.reason})")
            break
        elif isinstance(ev, Reconnected):
            lost = "; messages sent meanwhile were missed" if ev.gap else ""
            _err(("resumed" if ev.resumed else "rejoined with a new identity") + lost)
        elif isinstance(ev, DecryptFailed):
            _err(f"warning: message {ev.seq} could not be opened ({ev.code})")
        elif isinstance(ev, KeyRejected):
            _err(f"warning: a sender key from {_clean(ev.pseudonym)} was refused ({ev.code})")
    if args.count is not None and printed < args.count:
        return EXIT_FAIL
    return EXIT_OK


__all__ = ["add_commands"]
