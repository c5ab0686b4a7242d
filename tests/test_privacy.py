"""Privacy audit as tests: during a busy integration run (memory and Redis), no log line at any
level carries an IP address, message text, a key or a pseudonym; the node writes nothing to disk;
on Redis every key has an expiry and belongs to a family that docs/operations.md lists."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from chatserver import e2ee, logs
from chatserver.e2ee.charter import make_charter
from tests.conftest import RunningServer, ServerFactory
from tests.members import TestMember, prove_seat

CANARY = "PLAINTEXT-CANARY-7f3a"
NICKS = ("Riverstone", "Quillfeather")
OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
IP = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\b", re.I)

_WRITES: list[str] = []
_WATCH = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    if not _WATCH or event != "open":
        return
    path, mode, flags = [*args, None, None, None][:3]
    writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
        isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
    )
    if writing and isinstance(path, (str, bytes, os.PathLike)):
        _WRITES.append(os.fsdecode(path))


sys.addaudithook(_audit)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The production log setup (JSON lines, libraries silenced) at DEBUG, into a buffer."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {n: logging.getLogger(n).level for n in ("aiohttp.access", "engineio", "socketio")}
    logs.configure("debug")
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


# busy_run sends 20 messages and a key batch at once: more than the default burst of 20.
BUSY = {"msg_rate_per_s": 100.0, "msg_burst": 100}


async def busy_run(server: RunningServer) -> list[bytes]:
    """Rooms, joins, chosen names, messages, typing, renames, refusals, a reconnect, leaves."""
    secrets_seen: list[bytes] = []
    c = await server.client()
    listed = await c.call("room.create", {"listed": True, "topic": "privacy audit"})
    room_id = listed["room"]["room_id"]
    secret = e2ee.new_room_secret()
    private_id = base64.urlsafe_b64encode(secret.room_id).rstrip(b"=").decode()
    ack = await c.call(
        "room.create",
        {
            "room_id": private_id,
            "join_key": secret.join_public,
            "title": b"\x01" * 64,
            "charter": make_charter(secret, None, lobby=False),
        },
    )
    assert ack["ok"], ack
    a = await TestMember.join(server, room_id, nickname=NICKS[0])
    b = await TestMember.join(server, room_id, nickname=NICKS[1])
    p = await TestMember.join(server, private_id, secret)
    a.crypto.add_member(b.crypto.card)
    b.crypto.add_member(a.crypto.card)
    for i in range(20):
        sent = await a.send(f"{CANARY} {i}")
        assert sent["ok"], sent
        await a.client.call("typing", {"room_id": room_id, "on": True})
    await b.client.call("room.rename", {"room_id": room_id, "nickname": NICKS[1] + "x"})
    await b.client.call("msg.send", {"room_id": room_id, "env": b"garbage"})
    await b.client.call("room.join", {"room_id": room_id, "card": b"bad"})
    for _ in range(40):
        await b.client.call("msg.send", {"room_id": room_id, "env": b.envelope(CANARY)})
    # A reconnect and resume, then leaves.
    token = a.joined["you"]["token"]
    secrets_seen += [token, a.crypto.card, secret.join_public, p.crypto.card]
    await a.client.sio.disconnect()
    c2 = await server.client()
    resumed = await c2.call(
        "room.resume",
        {
            "room_id": room_id,
            "member_id": a.member_id,
            "token": token,
            "epoch": 1,
            "last_seq": 0,
            **await prove_seat(c2, room_id, a.identity),
        },
    )
    assert resumed["ok"], resumed
    await c2.call("room.leave", {"room_id": room_id})
    await b.client.call("room.leave", {"room_id": room_id})
    await p.client.call("room.leave", {"room_id": private_id})
    await asyncio.sleep(0.2)
    return secrets_seen


def forms(secret: bytes) -> list[str]:
    return [
        secret.hex(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        repr(secret)[2:-1][:40],
    ]


async def test_logs_carry_no_address_text_key_or_pseudonym(
    make_server: ServerFactory, captured_logs: io.StringIO
) -> None:
    global _WATCH
    server = await make_server(msg_rate_per_s=100.0, msg_burst=100)  # about logs, not limits
    _WRITES.clear()
    _WATCH = True
    try:
        secrets_seen = await busy_run(server)
    finally:
        _WATCH = False
    text = captured_logs.getvalue()
    assert text, "nothing was logged at debug level: the capture is broken"
    assert not IP.search(text), IP.search(text)
    assert CANARY not in text
    for nick in NICKS:
        assert nick.lower() not in text.lower()
    for secret in secrets_seen:
        for form in forms(secret):
            assert form not in text
    assert "Traceback" not in text
    # Nothing on disk: the node writes no file during a busy run (its config and signing key are
    # read at start, outside this window).
    written = [w for w in _WRITES if not w.startswith(("/dev/", "/proc/"))]
    assert written == [], written


def documented_families() -> list[re.Pattern[str]]:
    """Key patterns from the table in docs/operations.md, e.g. `cs:{R}:mbox:<member>`."""
    patterns = []
    for key in re.findall(r"`(cs:[^`]+)`", OPERATIONS.read_text()):
        regex = re.escape(key).replace(r"\{R\}", r"\{[A-Za-z0-9_-]{22}\}")
        regex = re.sub(r"<[a-z]+>", ".+", regex.replace(r"\<", "<").replace(r"\>", ">"))
        regex = regex.replace(r"\{key\}", r"\{.+\}")
        patterns.append(re.compile("^" + regex.removeprefix("cs:") + "$"))
    return patterns


async def redis_keys(server: RunningServer, redis_url: str) -> dict[str, int]:
    """Every key of this deployment after a busy run, with its PTTL."""
    await busy_run(server)
    prefix = server.node.settings.redis_prefix
    r = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() async for k in r.scan_iter(match=f"{prefix}:*", count=500)]
        return {k[len(prefix) + 1 :]: await r.pttl(k) for k in keys}
    finally:
        await r.aclose()


@pytest.mark.parametrize("make_server", ["redis"], indirect=True)
async def test_redis_holds_only_documented_key_families(
    make_server: ServerFactory, redis_url: str
) -> None:
    keys = await redis_keys(await make_server(address_limit_exempt="", **BUSY), redis_url)
    assert keys, "the busy run left nothing in Redis: the scan is broken"
    families = documented_families()
    assert [k for k in keys if not any(f.match(k) for f in families)] == []


@pytest.mark.parametrize("make_server", ["redis"], indirect=True)
async def test_every_redis_key_expires(make_server: ServerFactory, redis_url: str) -> None:
    keys = await redis_keys(await make_server(address_limit_exempt="", **BUSY), redis_url)
    assert keys
    assert {k: t for k, t in keys.items() if t < 0} == {}


async def test_a_connection_keeps_no_request_headers(make_server: ServerFactory) -> None:
    """python-socketio keeps each connection's environ (every request header) for its lifetime;
    the gateway trims it to what room bans need, so the user agent, languages and cookies of a
    connected person are not held."""
    server = await make_server()
    c = await server.client()
    ack = await c.call("room.list", {})
    assert ack["ok"]
    [sid] = list(server.node.registry.connections)
    environ = server.node.sio.get_environ(sid)
    assert environ is not None and "aiohttp.request" in environ
    assert set(environ) <= {"aiohttp.request", "HTTP_X_FORWARDED_FOR"}
