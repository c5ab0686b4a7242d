"""The websocket below Socket.IO, now that the transport reads it itself: frames (masking, fragments,
control frames, limits), the handshake and what arrives right behind it, the close handshake, the
node-wide heartbeat (a client that stops answering pings is closed after `ping_interval +
ping_timeout`), and how little an idle connection holds."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import struct
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest

from chatserver.transport.frames import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    FrameError,
    FrameReader,
    ws_frame,
)
from tests.conftest import RunningServer, ServerFactory

SIO_CONNECT = msgpack.packb({"type": 0, "nsp": "/", "data": {}})
ROOM_LIST = msgpack.packb({"type": 2, "nsp": "/", "data": ["room.list", {}], "id": 1})
BENCH = Path(__file__).resolve().parent.parent / "bench"


def client_frame(
    payload: bytes, opcode: int = BINARY, fin: bool = True, key: bytes = b"\x01\x02\x03\x04"
) -> bytes:
    """A masked client frame (RFC 6455 5.2)."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        header = bytes((first, 0x80 | n))
    elif n < 65536:
        header = bytes((first, 0x80 | 126)) + struct.pack("!H", n)
    else:
        header = bytes((first, 0x80 | 127)) + struct.pack("!Q", n)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + masked


# --- the frame reader -----------------------------------------------------------------------


def test_frames_are_unmasked_and_may_arrive_a_byte_at_a_time() -> None:
    reader = FrameReader(max_size=1000)
    stream = client_frame(b"hello", TEXT) + client_frame(b"\x00" * 300) + client_frame(b"", PING)
    out: list[tuple[int, bytes]] = []
    for i in range(len(stream)):
        out += reader.feed(stream[i : i + 1])
    assert out == [(TEXT, b"hello"), (BINARY, b"\x00" * 300), (PING, b"")]
    assert reader._buf is None  # nothing held between frames


def test_fragments_are_joined_and_control_frames_may_come_between() -> None:
    reader = FrameReader(max_size=1000)
    out = reader.feed(
        client_frame(b"ab", TEXT, fin=False)
        + client_frame(b"", PING)
        + client_frame(b"cd", 0, fin=False)
        + client_frame(b"ef", 0, fin=True)
    )
    assert out == [(PING, b""), (TEXT, b"abcdef")]


@pytest.mark.parametrize(
    ("stream", "code"),
    [
        (bytes((0x82, 5)) + b"hello", 1002),  # not masked
        (bytes((0xC2, 0x80)) + b"\0\0\0\0", 1002),  # RSV1 set (no extension was negotiated)
        (client_frame(b"", 0x3), 1002),  # a reserved opcode
        (client_frame(b"", 0xB), 1002),  # a reserved control opcode
        (client_frame(b"x", 0), 1002),  # a continuation with nothing to continue
        (client_frame(b"x", TEXT, fin=False) + client_frame(b"y", TEXT), 1002),
        (client_frame(b"", PING, fin=False), 1002),  # a fragmented control frame
        (client_frame(b"x" * 126, PING), 1002),  # a control frame over 125 bytes
        (client_frame(b"x" * 101), 1009),
        (client_frame(b"x" * 60, TEXT, fin=False) + client_frame(b"x" * 60, 0), 1009),
    ],
)
def test_what_a_server_must_refuse(stream: bytes, code: int) -> None:
    reader = FrameReader(max_size=100)
    with pytest.raises(FrameError) as refused:
        reader.feed(stream)
    assert refused.value.code == code


def test_an_oversized_frame_is_refused_from_its_header_alone() -> None:
    reader = FrameReader(max_size=1000)
    header = bytes((0x82, 0x80 | 127)) + struct.pack("!Q", 2**40)
    with pytest.raises(FrameError) as refused:
        reader.feed(header)  # no payload was sent, none is waited for
    assert refused.value.code == 1009


# --- a raw websocket ------------------------------------------------------------------------


class RawSocket:
    """A websocket spoken by hand over TCP, to send what a library client would not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: RunningServer, behind: bytes = b"", key: str = "") -> RawSocket:
        host, port = server.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = key or base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
            + behind
        )
        return cls(reader, writer)

    async def status(self) -> bytes:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        return head.split(b"\r\n", 1)[0]

    async def frame(self, timeout: float = 5) -> tuple[int, bytes]:
        head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return head[0] & 0x0F, await self.reader.readexactly(n)

    async def expect(self, opcode: int) -> bytes:
        got, payload = await self.frame()
        assert got == opcode, (got, payload)
        return payload

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def gone(server: RunningServer, timeout: float = 5.0) -> None:
    """Until the node holds no engine.io socket and no connection record."""
    deadline = time.monotonic() + timeout
    while server.node.sio.eio.sockets or server.node.registry.connections:
        assert time.monotonic() < deadline, "the node still holds the connection"
        await asyncio.sleep(0.02)


async def test_frames_sent_right_behind_the_handshake_are_read(server: RunningServer) -> None:
    """What a client sends in the same segment as its upgrade request (aiohttp read it with the
    head) is handed over with the connection: the CONNECT and the event behind it are served."""
    ws = await RawSocket.open(server, behind=client_frame(SIO_CONNECT) + client_frame(ROOM_LIST))
    assert b" 101 " in await ws.status()
    assert (await ws.expect(TEXT)).startswith(b"0{")
    assert msgpack.unpackb(await ws.expect(BINARY))["type"] == 0
    ack = msgpack.unpackb(await ws.expect(BINARY))
    assert ack["type"] == 3 and ack["id"] == 1 and ack["data"][0]["ok"]
    await ws.close()
    await gone(server)


async def test_fragments_pings_and_the_close_handshake(server: RunningServer) -> None:
    ws = await RawSocket.open(server)
    assert b" 101 " in await ws.status()
    await ws.expect(TEXT)
    ws.send(client_frame(SIO_CONNECT))
    await ws.expect(BINARY)
    # An event in three fragments, a websocket ping between two of them.
    third = len(ROOM_LIST) // 3
    ws.send(
        client_frame(ROOM_LIST[:third], BINARY, fin=False),
        client_frame(b"are you there", PING),
        client_frame(ROOM_LIST[third : 2 * third], 0, fin=False),
        client_frame(ROOM_LIST[2 * third :], 0),
    )
    assert await ws.expect(PONG) == b"are you there"
    assert msgpack.unpackb(await ws.expect(BINARY))["id"] == 1
    assert len(server.node.registry.connections) == 1
    # The client closes: the server answers with its close frame, ends the TCP connection, and the
    # connection's disconnect runs.
    ws.send(client_frame(struct.pack("!H", 1000), CLOSE))
    assert struct.unpack("!H", (await ws.expect(CLOSE))[:2])[0] == 1000
    assert await asyncio.wait_for(ws.reader.read(), 5) == b""
    await ws.close()
    await gone(server)


async def test_a_burst_past_the_inbox_bound_pauses_reading_and_is_served(
    server: RunningServer,
) -> None:
    """3,000 events in one write (about 450 KB, past INBOX_PAUSE_BYTES): reading pauses while they
    wait, resumes as they are handed on, and every one is answered."""
    n = 3000
    ws = await RawSocket.open(server)
    await ws.status()
    await ws.expect(TEXT)
    ws.send(client_frame(SIO_CONNECT))
    await ws.expect(BINARY)
    pad = "x" * 120
    ws.send(
        *(
            client_frame(
                msgpack.packb({"type": 2, "nsp": "/", "data": ["room.list", {pad: 1}], "id": i})
            )
            for i in range(1, n + 1)
        )
    )
    ids: set[int] = set()
    while len(ids) < n:
        ack = msgpack.unpackb(await ws.expect(BINARY))
        assert ack["type"] == 3
        ids.add(ack["id"])
    assert ids == set(range(1, n + 1))
    await ws.close()
    await gone(server)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (client_frame(b"\xff\xfe", TEXT), 1007),  # not UTF-8
        (bytes((0x82, 3)) + b"abc", 1002),  # not masked
        (client_frame(b"x" * 90000), 1009),  # over max_frame_bytes (80 KiB)
    ],
)
async def test_a_broken_frame_closes_with_its_code(
    server: RunningServer, frame: bytes, code: int
) -> None:
    ws = await RawSocket.open(server)
    await ws.status()
    await ws.expect(TEXT)
    ws.send(client_frame(SIO_CONNECT))
    await ws.expect(BINARY)
    ws.send(frame)
    assert struct.unpack("!H", (await ws.expect(CLOSE))[:2])[0] == code
    # The client does not answer: the TCP connection is dropped after the grace all the same.
    assert await asyncio.wait_for(ws.reader.read(), 5) == b""
    await ws.close()
    await gone(server)


async def test_a_bad_handshake_is_refused_and_leaves_nothing(server: RunningServer) -> None:
    ws = await RawSocket.open(server, key="not a key")
    assert b" 400 " in await ws.status()
    await ws.close()
    await gone(server)


async def test_a_websocket_ping_from_a_library_client_is_answered(server: RunningServer) -> None:
    url = server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url, autoping=False) as ws:
        assert (await ws.receive(timeout=5)).data.startswith("0{")
        await ws.ping(b"hi")
        pong = await ws.receive(timeout=5)
        assert pong.type is aiohttp.WSMsgType.PONG and pong.data == b"hi"


# --- the heartbeat --------------------------------------------------------------------------

# engine.io announces `pingInterval` in whole seconds (it truncates), so the interval is 1 s.
INTERVAL, TIMEOUT = 1.0, 0.3


async def open_raw(server: RunningServer) -> tuple[aiohttp.ClientSession, Any, float]:
    url = server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(url)
    opened = time.monotonic()
    assert (await ws.receive(timeout=5)).data.startswith("0{")
    await ws.send_bytes(SIO_CONNECT)
    assert msgpack.unpackb((await ws.receive(timeout=5)).data)["type"] == 0
    return http, ws, opened


@pytest.mark.parametrize("make_server", ["memory"], indirect=True)
async def test_a_client_that_never_answers_pings_is_closed_after_interval_and_timeout(
    make_server: ServerFactory,
) -> None:
    server = await make_server(ping_interval_s=INTERVAL, ping_timeout_s=TIMEOUT)
    http, ws, opened = await open_raw(server)
    try:
        pings = 0
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            assert msg.data == "2"  # an Engine.IO ping, never answered
            pings += 1
        closed = time.monotonic() - opened
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
        assert pings == 1
        # Not before the interval and the timeout have both passed, and not long after.
        assert INTERVAL + TIMEOUT - 0.05 <= closed < INTERVAL + TIMEOUT + 0.5, closed
        await gone(server, timeout=2)
    finally:
        await ws.close()
        await http.close()


@pytest.mark.parametrize("make_server", ["memory"], indirect=True)
async def test_clients_that_answer_pings_stay(make_server: ServerFactory) -> None:
    server = await make_server(ping_interval_s=INTERVAL, ping_timeout_s=TIMEOUT)
    library = await server.client()  # python-socketio's client answers pings by itself
    http, ws, opened = await open_raw(server)
    try:
        pings = 0
        while time.monotonic() - opened < 3 * (INTERVAL + TIMEOUT):
            msg = await ws.receive(timeout=5)
            assert msg.type is aiohttp.WSMsgType.TEXT and msg.data == "2", msg
            pings += 1
            await ws.send_str("3")
        assert pings >= 3
        await ws.send_bytes(ROOM_LIST)
        ack = msgpack.unpackb((await ws.receive(timeout=5)).data)
        assert ack["type"] == 3 and ack["data"][0]["ok"]
        assert library.sio.connected
        assert (await library.call("room.list", {}))["ok"]
        assert len(server.node.registry.connections) == 2
    finally:
        await ws.close()
        await http.close()


@pytest.mark.parametrize("make_server", ["memory"], indirect=True)
async def test_a_websocket_left_open_after_a_server_disconnect_is_closed(
    make_server: ServerFactory,
) -> None:
    """engine.io's own disconnect sends the CLOSE packet and forgets the socket; a client that
    keeps the websocket open anyway is closed at what would have been its next ping."""
    server = await make_server(ping_interval_s=INTERVAL, ping_timeout_s=TIMEOUT)
    http, ws, _ = await open_raw(server)
    try:
        [eio_sid] = list(server.node.sio.eio.sockets)
        started = time.monotonic()
        await server.node.sio.eio.disconnect(eio_sid)
        assert (await ws.receive(timeout=5)).data == "1"  # the Engine.IO CLOSE packet
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
        assert time.monotonic() - started < INTERVAL + 0.5
    finally:
        await ws.close()
        await http.close()


# --- memory ---------------------------------------------------------------------------------

IDLE = 300
# Traced bytes per idle connection on the node (its transport included; asyncio's loop here, whose
# transports are larger than uvloop's). About 4 KB today; it was about 25 KB while aiohttp's
# request, its handler task and engine.io's ping task lived as long as the connection.
IDLE_BOUND_BYTES = 10 * 1024


@pytest.mark.parametrize("make_server", ["memory"], indirect=True)
async def test_an_idle_connection_holds_no_task_and_little_memory(
    make_server: ServerFactory,
) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from wsclient import FastClient
    finally:
        sys.path.remove(str(BENCH))
    server = await make_server()
    warm = [FastClient(server.url) for _ in range(20)]
    for c in warm:
        await c.open()
    await asyncio.sleep(0.1)
    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    tracemalloc.start(32)
    try:
        before = tracemalloc.take_snapshot()
        clients = [FastClient(server.url) for _ in range(IDLE)]
        for c in clients:
            await c.open()
        await asyncio.sleep(0.2)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # The node's allocations only: not the clients' (made under wsclient.py), not tracemalloc's.
    skip = (
        tracemalloc.Filter(False, "*/bench/wsclient.py", all_frames=True),
        tracemalloc.Filter(False, tracemalloc.__file__),
    )
    diff = after.filter_traces(skip).compare_to(before.filter_traces(skip), "filename")
    per_connection = sum(s.size_diff for s in diff) / IDLE
    print(f"\n{per_connection:.0f} traced bytes per idle connection on the node")
    assert len(server.node.registry.connections) == IDLE + len(warm)
    assert len(asyncio.all_tasks()) - tasks_before < 5, "a task per idle connection"
    held = {type(o).__name__ for o in gc.get_objects()}
    assert not held & {"RequestHandler", "WebSocketResponse", "Request"}, held & {
        "RequestHandler",
        "WebSocketResponse",
        "Request",
    }
    assert per_connection < IDLE_BOUND_BYTES
    for c in [*warm, *clients]:
        await c.close()
    await gone(server, timeout=10)


def test_server_frames_round_trip_through_the_reader() -> None:
    """`ws_frame` (server side, unmasked) and `FrameReader` (client side, masked) agree on lengths."""
    for n in (0, 125, 126, 65535, 65536):
        frame = ws_frame(b"x" * n)
        masked = bytes((frame[0], frame[1] | 0x80)) + frame[2 : len(frame) - n] + b"\0\0\0\0"
        assert FrameReader(max_size=70000).feed(masked + b"x" * n) == [(BINARY, b"x" * n)]
