"""The engine.io / python-socketio fast path behind `chatserver.transport.seam`.

## The rule of this layer

This module is where chatserver touches engine.io, python-socketio, bidict and aiohttp internals
(the one other place is the gateway's socket server, `chatserver/gateway/socket_server.py`, which
overrides python-socketio's `AsyncServer._handle_*` hooks), and it touches only those listed here;
`tests/test_transport_pins.py` checks each of them, and the socket server's hooks, against the
installed packages, and pyproject.toml pins python-engineio, python-socketio, bidict and aiohttp to
the minor versions that test passed on, so an upgrade fails that test loudly instead of silently
turning the fast path off (or breaking it). Upgrading one of them means: read its changes for the
names below, widen the pin, and run the test. Nothing outside this package may import it except
through `chatserver.transport` (the gateway and the composition root use the seam's two contracts).

What it relies on, and why:
- `engineio.AsyncServer._async["websocket"]` (the driver table, copied then patched per server):
  the aiohttp websocket class engine.io instantiates as `cls(handler, server)`; replaced by
  `PlainWebSocket`, which answers the handshake itself and takes the connection over.
- `engineio.AsyncServer.create_queue()`: called by `engineio.base_socket.BaseSocket.__init__` to
  make `socket.queue`; overridden to return a `DirectSendQueue` (engine.io calls `put`,
  `put_nowait`, `get_nowait`, `task_done`, `join` on it; polling, which would call `get`, is off).
- `engineio.async_drivers.aiohttp.WebSocket`: its `__init__(handler, server)` keeps `self.handler`
  and `self.server`; `handler` is the socket's bound `_websocket_handler`, so `handler.__self__` is
  the engine.io socket (how a websocket finds its socket); `environ["aiohttp.request"]` is the
  aiohttp request engine.io's aiohttp driver puts in the environ, `environ["wsgi.input"]` its body.
- engine.io socket state: `sid`, `queue`, `connected`, `upgraded`, `closing`, `closed`,
  `last_ping`, `receive(packet)`, `close(wait=, abort=, reason=)`, `schedule_ping()`; server
  state: `sockets`, `ping_interval`, `ping_timeout`, `max_http_buffer_size`,
  `reason.TRANSPORT_CLOSE` / `reason.PING_TIMEOUT`, `disconnect(sid)`;
  `engineio.packet.Packet(encoded_packet=)` / `Packet(MESSAGE, data).encode()`, `packet.PING` /
  `PONG`, `engineio.exceptions.SocketIsClosedError`.
- engine.io's heartbeat: `AsyncSocket.schedule_ping()` (called by `AsyncServer._handle_connect`
  once the connect event accepted the socket, and on every PONG) clears `last_ping` and starts
  `self._send_ping` with `server.start_background_task`: one task, one sleeping future and one timer
  per socket. `ChatEngineServer.start_background_task` recognises that target
  (`AsyncSocket._send_ping`, bound to a socket) and hands the socket to its `Pinger` instead: one
  timer for every socket of the node, which sets `last_ping` and sends the PING as `_send_ping`
  does, and closes a socket whose PONG has not come `ping_timeout` after it. The server is built
  with `monitor_clients=False`: engine.io's service task would check every socket's ping timeout
  again, with a timer per socket visited.
- python-socketio: `AsyncManager.emit(event, data, namespace, room, skip_sid, callback, to,
  **kwargs)` (overridden by `FanoutManager`), `manager.rooms[namespace][room]` (a bidict of
  sid -> eio_sid), `manager.server.packet_class` and `manager.server.eio`, `socketio.packet.EVENT`;
  `AsyncServer._engineio_server_class()` (overridden by the gateway's socket server to use
  `ChatEngineServer`).
- bidict: `bidict._fwdm`, the forward dict of a room's members, read without copying on the hot
  path (a broadcast iterates it once).
- aiohttp, to take a websocket over once its handshake is answered (`PlainWebSocket.__call__`):
  `request.protocol` (the connection's `web_protocol.RequestHandler`), `request.transport`,
  `request.headers`, `request.remote`; `RequestHandler.set_parser(parser)`, which feeds the bytes
  that came after the request head to `parser.feed_data` (and resumes reading if the handler had
  paused it); `RequestHandler.keep_alive(False)`, which cancels its keep-alive timer; the
  `RequestHandler.transport` attribute, set to None before `RequestHandler.connection_lost(None)`
  so that the handler unregisters from aiohttp's server and closes nothing; `transport.
  set_protocol()` (asyncio's and uvloop's transports); and what aiohttp does with the handler's
  return value (`finish_response`: `resp.prepare(request)`, `resp.write_eof()`, then
  `resp.keep_alive`), which `DetachedResponse` answers without writing anything.
- `ChatEngineServer._dirty`: this module's own list of queues with frames to write in this loop
  iteration; `FanoutManager` appends to it directly (no method call per recipient).

## What it does

Transport policy under python-socketio: websocket only, no compression, bounded direct writes, and
nothing held per idle connection but its transport, its engine.io socket and a small protocol object.

python-engineio gives each socket an unbounded queue drained by a writer task that frames every packet
per recipient (`ws.send` -> aiohttp builds the frame -> `transport.write`), a ping task, and a reader
running inside the aiohttp request handler for the connection's lifetime; and it lets aiohttp negotiate
permessage-deflate (about 4x the memory per connection, and a length side channel under encryption).

Here, `PlainWebSocket` answers the websocket handshake itself and takes the TCP transport over from
aiohttp (`WebSocketConnection` becomes its protocol): aiohttp's request, its headers, its handler task,
the coroutine chain through engine.io and the aiohttp websocket with its reader and writer are all
released once the connection is open (an idle connection went from 22.7 KB to 3.2 KB of RSS,
docs/performance.md). `WebSocketConnection` reads client frames with `frames.FrameReader` (masking,
fragments, control frames, `max_http_buffer_size`), answers pings and closes, and dispatches engine.io
packets in order on a task that lives only while packets are waiting. Every packet for a connection
(acks, pings, the close packet, room broadcasts) is framed by `chatserver.transport.frames` and written
straight to its TCP transport, in the order it was sent: there is no writer task and no queue per
socket. A room broadcast is encoded once and framed once, and the same bytes are written to every local
recipient. Buffering stays bounded: a connection whose unsent bytes pass `send_buffer_bytes` is closed
with 3008 (slow consumer), the packets queued before the websocket opens are capped at
`send_queue_max`, a client's unprocessed packets past `INBOX_PAUSE_BYTES` pause reading from it, and
one message is at most `max_http_buffer_size` (else close 1009). One `Pinger` per node keeps engine.io's
heartbeat: a PING every `ping_interval` after the last PONG, and a socket whose PONG is not back
within `ping_timeout` is disconnected (`ping timeout`) and its websocket closed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import math
import time
from collections import deque
from typing import Any

import engineio
import socketio
from aiohttp import web
from engineio import async_socket as eio_async_socket
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers.aiohttp import WebSocket as EngineWebSocket
from socketio import packet as sio_packet

from chatserver.protocol import CloseCode
from chatserver.transport.frames import (
    BINARY,
    CLOSE,
    INVALID_DATA,
    NORMAL_CLOSURE,
    PING,
    PONG,
    TEXT,
    FanoutStats,
    FrameError,
    FrameReader,
    close_frame,
    control_frame,
    frame_packet,
    ws_frame,
)
from chatserver.transport.refusals import Reason, Refusals

log = logging.getLogger("chatserver.transport")

WS_KEY = "chat_ws"
# Unsent bytes a connection may hold, per packet of `send_queue_max`, before it counts as slow.
BYTES_PER_QUEUED_PACKET = 2048
# A client's received packets not yet dispatched, in bytes, past which its reading pauses.
INBOX_PAUSE_BYTES = 128 * 1024
# After the server's close frame: how long the client has to answer with its own before the TCP
# connection is dropped (its unsent buffers with it).
CLOSE_GRACE_S = 0.5
# The pinger's timer is armed at most this often (pings may go out this much early; a ping
# timeout is never enforced early, at most this much late).
PING_RESOLUTION_S = 0.25

_SEND_PING = eio_async_socket.AsyncSocket._send_ping
PING_FRAME = ws_frame(eio_packet.Packet(eio_packet.PING).encode())
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_SWITCHING = (
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
    "Sec-WebSocket-Accept: {}\r\n\r\n"
)


class DirectSendQueue:
    """An engine.io socket's send queue that, once its websocket is open, writes instead of queuing.

    Before the websocket is open (the engine.io OPEN packet is sent first), packets wait here, at most
    `limit` of them. `attach` writes them out; from then on `put_nowait` frames each packet and adds
    it to `pending`, which the server writes to the transport once per loop iteration (every frame
    for this connection in that iteration in one write), so packets keep the order they were sent in.

    Not an `asyncio.Queue`: nothing ever waits on it (there is no writer task, and polling is off),
    and the four deques and the event of one cost about 3 KB per idle connection. It offers the
    methods engine.io's websocket path calls: `put`, `put_nowait`, `get_nowait`, `task_done`, `join`.
    """

    __slots__ = (
        "detached",
        "early",
        "eio_sid",
        "limit",
        "max_bytes",
        "overflowed",
        "pending",
        "server",
        "transport",
    )

    def __init__(self, limit: int, max_bytes: int, server: ChatEngineServer) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.server = server
        self.overflowed = False
        self.eio_sid: str | None = None
        self.transport: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.early: list[Any] = []  # packets sent before the websocket opened
        self.detached = False

    def attach(self, eio_sid: str, transport: asyncio.Transport) -> None:
        self.eio_sid = eio_sid
        self.transport = transport
        early, self.early = self.early, []
        for item in early:
            if item is not None:
                self.push(frame_packet(item))

    def detach(self) -> None:
        self.flush()
        self.transport = None
        self.detached = True

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        if self.transport is not None:
            if item is not None:  # None is engine.io's writer sentinel: there is no writer
                self.push(frame_packet(item))
            return
        if self.detached:
            self.server.stats.dropped += item is not None
            return
        # None is engine.io's sentinel that lets a writer exit: always accept it.
        if item is not None and len(self.early) >= self.limit:
            self.server.stats.dropped += 1
            self.overflow()
            return
        self.early.append(item)

    def get_nowait(self) -> Any:
        if not self.early:
            raise asyncio.QueueEmpty
        return self.early.pop(0)

    def task_done(self) -> None:
        """Nothing to count: packets are written, not handed to a consumer."""

    async def join(self) -> None:
        """engine.io's close waits for the queue to drain: send what this iteration holds now."""
        self.flush()

    def qsize(self) -> int:
        return len(self.early)

    def empty(self) -> bool:
        return not self.early

    def push(self, frame: bytes) -> None:
        """Add a frame to this iteration's write (the server flushes every dirty queue soon)."""
        if not self.pending:
            self.server.mark_dirty(self)
        self.pending.append(frame)

    def flush(self) -> None:
        pending = self.pending
        if not pending:
            return
        self.pending = []
        transport = self.transport
        if transport is None or transport.is_closing():
            self.server.stats.dropped += len(pending)
            return
        self.write_now(pending[0] if len(pending) == 1 else b"".join(pending))

    def write_now(self, data: bytes) -> None:
        """Write to the transport (only with nothing pending: frames keep their order)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            self.server.stats.dropped += 1
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self.max_bytes:
            self.overflow()

    def overflow(self) -> None:
        if not self.overflowed:
            self.overflowed = True
            self.server.on_overflow(self)


def handshake_accept(headers: Any) -> str | None:
    """The `Sec-WebSocket-Accept` value for a valid websocket upgrade (RFC 6455 4.2.1), else None.

    The checks aiohttp's `WebSocketResponse` makes: `Upgrade: websocket`, an `upgrade` token in
    `Connection`, version 13 (or the drafts 8 and 7), a key of 16 base64 bytes. No extension and
    no subprotocol is ever negotiated."""
    if headers.get("Upgrade", "").strip().lower() != "websocket":
        return None
    tokens = {
        t.strip(" \t").lower() for v in headers.getall("Connection", ()) for t in v.split(",")
    }
    if "upgrade" not in tokens:
        return None
    if headers.get("Sec-WebSocket-Version", "") not in ("13", "8", "7"):
        return None
    key = headers.get("Sec-WebSocket-Key", "")
    try:
        if not key or len(base64.b64decode(key, validate=True)) != 16:
            return None
    except (binascii.Error, ValueError):
        return None
    digest = hashlib.sha1(key.encode() + _WS_GUID, usedforsecurity=False).digest()  # RFC 6455
    return base64.b64encode(digest).decode()


class PeerAddress:
    """What stays of the aiohttp request in a connection's environ once its websocket is taken
    over: the peer address `chatserver.addresses.environ_address` reads (`request.remote`)."""

    __slots__ = ("remote",)

    def __init__(self, remote: str | None) -> None:
        self.remote = remote


class DetachedResponse(web.StreamResponse):
    """What aiohttp gets back for a websocket this module took over: already answered (the 101 went
    straight to the transport), nothing to write and no keep-alive, so aiohttp's handling of the
    request ends here and lets go of it."""

    def __init__(self) -> None:
        super().__init__(status=101)
        self.force_close()

    @property
    def prepared(self) -> bool:
        return True

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


class _Tail:
    """Collects what aiohttp received after the upgrade request's head (`set_parser` feeds it)."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = b""

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.data += bytes(data)
        return False, b""

    def feed_eof(self) -> None:
        """aiohttp's `connection_lost` says goodbye to its parser: nothing to do."""


class PlainWebSocket(EngineWebSocket):  # type: ignore[misc]
    """engine.io's aiohttp websocket, replaced: answers the handshake (no compression) and hands the
    connection to a `WebSocketConnection`, so that aiohttp's request handling ends at once."""

    async def __call__(self, environ: dict[str, Any]) -> web.StreamResponse:
        request: web.Request = environ["aiohttp.request"]
        server: ChatEngineServer = self.server
        socket = self.handler.__self__  # the handler is the engine.io socket's bound method
        transport = request.transport
        accept = handshake_accept(request.headers)
        if accept is None or transport is None or transport.is_closing():
            await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
            return web.Response(status=400, text="Bad websocket handshake.")
        # From here to the return nothing is awaited: aiohttp's handler must not run in between.
        environ["aiohttp.request"] = PeerAddress(request.remote)
        environ.pop("wsgi.input", None)  # the request's body stream: it holds aiohttp's handler
        protocol = request.protocol
        tail = _Tail()
        protocol.set_parser(tail)  # type: ignore[arg-type]
        protocol.keep_alive(False)
        conn = WebSocketConnection(socket, server, transport)
        transport.set_protocol(conn)
        protocol.transport = None  # so that aiohttp's handler, told the connection is lost,
        protocol.connection_lost(None)  # leaves its server and closes nothing
        transport.write(_SWITCHING.format(accept).encode())
        conn.open(tail.data)
        return DetachedResponse()


class WebSocketConnection(FrameReader, asyncio.Protocol):
    """One open websocket: the TCP transport's protocol once `PlainWebSocket` took it over.

    Reads client frames (`FrameReader`), answers websocket pings and the close handshake, and hands
    engine.io packets to the socket in the order they came: a PONG at once (engine.io's
    `schedule_ping`), every other packet through `inbox`, drained by a task that exists only while
    packets wait. Writes go through the socket's `DirectSendQueue`. An idle connection holds this
    object, its transport and its engine.io socket: no task, no future, no timer."""

    __slots__ = (
        "abort_handle",
        "broken",
        "closing",
        "ended",
        "inbox",
        "inbox_bytes",
        "lost",
        "paused",
        "queue",
        "server",
        "socket",
        "task",
        "transport",
    )

    def __init__(self, socket: Any, server: ChatEngineServer, transport: asyncio.Transport) -> None:
        super().__init__(server.max_http_buffer_size)
        self.socket = socket
        self.server = server
        self.transport = transport
        self.queue: DirectSendQueue = socket.queue
        self.inbox: deque[tuple[Any, int]] | None = None
        self.inbox_bytes = 0
        self.task: asyncio.Task[None] | None = None
        self.paused = False
        self.closing = False  # the server sent its close frame: dispatch nothing more
        self.broken = False  # nothing more is parsed (a protocol error, or after a close frame)
        self.lost = False
        self.abort_handle: asyncio.TimerHandle | None = None
        self.ended: asyncio.Future[None] | None = None  # made when someone waits for the end

    def open(self, tail: bytes) -> None:
        """The handshake is answered: the socket's packets go out, what the client sent comes in."""
        socket = self.socket
        socket.connected = True
        socket.upgraded = True
        setattr(socket, WS_KEY, self)
        self.queue.attach(socket.sid, self.transport)
        if tail:
            self.data_received(tail)

    # -- reading ---------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            frames = self.feed(data)
        except FrameError as exc:
            self.broken = True
            self.begin_close(exc.code, exc.reason)
            return
        for opcode, payload in frames:
            if opcode == BINARY:
                self.on_message(payload)
            elif opcode == TEXT:
                try:
                    text = payload.decode()
                except UnicodeDecodeError:
                    self.broken = True
                    self.begin_close(INVALID_DATA, "text is not UTF-8")
                    return
                self.on_message(text)
            elif opcode == PING:
                if not self.closing:
                    self.queue.push(control_frame(PONG, payload))
            elif opcode == CLOSE:
                self.on_close_frame()
                return

    def eof_received(self) -> bool | None:
        return None  # close the transport (connection_lost follows)

    def on_message(self, data: str | bytes) -> None:
        if self.closing:
            return
        try:
            pkt = eio_packet.Packet(encoded_packet=data)
        except (ValueError, IndexError, TypeError):
            self.server.refusals.refuse(Reason.BAD_FRAME)  # not an Engine.IO packet
            return
        if pkt.packet_type == eio_packet.PONG:
            self.socket.schedule_ping()  # the next ping, one interval from now (the Pinger)
            return
        inbox = self.inbox
        if inbox is None:
            inbox = self.inbox = deque()
        inbox.append((pkt, len(data)))
        self.inbox_bytes += len(data)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.drain())
        if self.inbox_bytes > INBOX_PAUSE_BYTES and not self.paused and not self.lost:
            self.paused = True
            self.transport.pause_reading()

    async def drain(self) -> None:
        """Hand waiting packets to the engine.io socket, one after the other, then end."""
        inbox = self.inbox
        assert inbox is not None
        socket = self.socket
        try:
            while inbox and not self.closing:
                pkt, size = inbox.popleft()
                self.inbox_bytes -= size
                if self.paused and self.inbox_bytes <= INBOX_PAUSE_BYTES // 2 and not self.lost:
                    self.paused = False
                    self.transport.resume_reading()
                try:
                    await socket.receive(pkt)
                except eio_exceptions.SocketIsClosedError:
                    self.begin_close(NORMAL_CLOSURE, "")
                    break
                except Exception:
                    # A frame a client made up must not fill the log: counted, never echoed.
                    self.server.refusals.refuse(Reason.BAD_FRAME)
        finally:
            self.task = None
            self.inbox = None
            self.inbox_bytes = 0
            if self.paused and not self.lost:
                self.paused = False
                self.transport.resume_reading()
            if self.lost:
                self.finish()

    # -- closing ---------------------------------------------------------------------------------

    def begin_close(self, code: int, reason: str) -> None:
        """Send the close frame after what was sent before it, then nothing more; the client has
        `CLOSE_GRACE_S` to answer before the TCP connection is dropped."""
        if self.lost:
            return
        if not self.closing and not self.transport.is_closing():
            self.closing = True
            self.queue.detach()  # writes what this iteration holds; later packets are dropped
            self.transport.write(close_frame(code, reason))
        self.abort_later()

    def on_close_frame(self) -> None:
        """The client's close frame: answered (unless it answers ours), and the TCP connection
        ends; the packets it sent before still reach the socket, in order."""
        self.broken = True
        if not self.closing:
            self.queue.detach()
            self.transport.write(close_frame(NORMAL_CLOSURE))
        self.transport.close()
        self.abort_later()  # a peer that does not read would hold the close (and its buffers)

    def abort_later(self) -> None:
        if self.abort_handle is None and not self.lost:
            self.abort_handle = asyncio.get_running_loop().call_later(
                CLOSE_GRACE_S, self.transport.abort
            )

    async def close_with(self, code: int, reason: str) -> None:
        """Close with a catalogued code, then drop the TCP connection (a stalled peer would
        otherwise keep its unsent buffers, and this socket, alive); returns once the socket's
        disconnect handlers ran."""
        self.begin_close(code, reason)  # the connection is lost within CLOSE_GRACE_S
        if self.ended is None:
            self.ended = asyncio.get_running_loop().create_future()
        await asyncio.shield(self.ended)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.broken = True
        if self.abort_handle is not None:
            self.abort_handle.cancel()
            self.abort_handle = None
        self.queue.detach()
        if self.task is None:
            self.finish()

    def finish(self) -> None:
        """The websocket is gone: the engine.io socket closes (its disconnect handlers run)."""
        self.server.run_closing(self._finish())

    async def _finish(self) -> None:
        socket = self.socket
        server = self.server
        try:
            await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
        finally:
            if server.sockets.get(socket.sid) is socket:
                del server.sockets[socket.sid]
            if getattr(socket, WS_KEY, None) is self:
                setattr(socket, WS_KEY, None)  # no cycle left between the two
            if self.ended is None:
                self.ended = asyncio.get_running_loop().create_future()
            if not self.ended.done():
                self.ended.set_result(None)


class Pinger:
    """engine.io's heartbeat for every socket of one server, on one timer.

    engine.io runs a task per socket that sleeps `ping_interval`, sets `last_ping` and sends a PING;
    the socket's PONG clears `last_ping` and starts the next one. Here the sockets wait in two
    queues instead: `pings` (due one interval after the open or the last PONG) and `deadlines`
    (`ping_timeout` after each PING). Every entry of one queue waits the same delay, so each stays in
    time order by appending, and one timer, armed for the earliest entry, serves both. A socket
    whose PING is unanswered at its deadline is disconnected (`ping timeout`) and its websocket
    closed: a client that stops answering is gone `ping_interval + ping_timeout` after its last
    PONG, never earlier and at most two `resolution`s later (PINGs, too, go out at most one
    `resolution` late: the timer fires at most once per `resolution`, for every entry due by then)."""

    __slots__ = ("armed_at", "deadlines", "handle", "pings", "resolution", "server")

    def __init__(self, server: ChatEngineServer) -> None:
        self.server = server
        self.pings: deque[tuple[float, Any]] = deque()
        self.deadlines: deque[tuple[float, Any, float]] = deque()
        self.handle: asyncio.TimerHandle | None = None
        self.armed_at = math.inf
        shortest = min(server.ping_interval, server.ping_timeout)
        self.resolution = max(0.005, min(PING_RESOLUTION_S, shortest / 10))

    def __len__(self) -> int:
        return len(self.pings) + len(self.deadlines)

    def schedule(self, socket: Any) -> None:
        """The socket's next PING, one interval from now (engine.io's `_send_ping`)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self.server.ping_interval
        self.pings.append((due, socket))
        self._arm(loop, due)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if when >= self.armed_at:
            return  # the timer fires before then anyway, and re-arms for what is left
        if self.handle is not None:
            self.handle.cancel()
        self.armed_at = when
        self.handle = loop.call_at(when, self._tick)

    def _tick(self) -> None:
        self.handle = None
        self.armed_at = math.inf
        loop = asyncio.get_running_loop()
        now = loop.time()
        server = self.server
        pings, deadlines = self.pings, self.deadlines
        if pings and pings[0][0] <= now:
            stamp = time.time()  # engine.io keeps `last_ping` in wall-clock time
            deadline = now + server.ping_timeout
            while pings and pings[0][0] <= now:
                socket = pings.popleft()[1]
                if socket.closing or socket.closed:
                    server.close_left_open(socket)
                    continue
                socket.last_ping = stamp
                queue: DirectSendQueue = socket.queue
                if queue.transport is not None:
                    queue.push(PING_FRAME)
                else:
                    queue.put_nowait(eio_packet.Packet(eio_packet.PING))
                deadlines.append((deadline, socket, stamp))
        while deadlines and deadlines[0][0] <= now:
            _, socket, stamp = deadlines.popleft()
            if socket.last_ping != stamp:
                continue  # answered: its next ping is in `pings`
            if socket.closing or socket.closed:  # engine.io closed it meanwhile (on a send)
                server.close_left_open(socket)
            else:
                server.run_closing(server.ping_timed_out(socket))
        heads = [q[0][0] for q in (pings, deadlines) if q]
        if heads:
            self._arm(loop, max(min(heads), now + self.resolution))


class ChatEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """engine.io server using PlainWebSocket, DirectSendQueue and one Pinger for every socket."""

    def __init__(
        self,
        *args: Any,
        send_queue_max: int = 512,
        send_buffer_bytes: int | None = None,
        direct_writes: bool = True,
        **kwargs: Any,
    ) -> None:
        # Without direct writes: engine.io's own websocket, queue, writer and ping task per
        # connection (the stock path the perf guard must tell apart; `transport_fast_path`).
        if direct_writes:
            kwargs["monitor_clients"] = False  # the Pinger enforces ping timeouts
        super().__init__(*args, **kwargs)
        self.direct_writes = direct_writes
        if direct_writes:
            drivers: dict[str, Any] = dict(getattr(self, "_async"))  # noqa: B009 - module-level table: copy it
            self._async = drivers
            self._async["websocket"] = PlainWebSocket
        self.send_queue_max = send_queue_max
        self.send_buffer_bytes = send_buffer_bytes or send_queue_max * BYTES_PER_QUEUED_PACKET
        self.stats = FanoutStats()
        self.refusals = Refusals()
        self.pinger = Pinger(self)
        self._closing: set[asyncio.Task[None]] = set()
        self._dirty: list[DirectSendQueue] = []
        self._flush_scheduled = False
        # Room broadcasts since the last flush, and whether the last flush saw more than one: a
        # busy loop coalesces (one write per connection for all of an iteration's frames), a quiet
        # one writes a broadcast at once (no wait for the end of the iteration).
        self.broadcasts = 0
        self.coalescing = False

    def mark_dirty(self, queue: DirectSendQueue) -> None:
        if not self._flush_scheduled:
            self.schedule_flush()
        self._dirty.append(queue)

    def schedule_flush(self) -> None:
        self._flush_scheduled = True
        asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write every connection's frames of this loop iteration, one write per connection."""
        self._flush_scheduled = False
        self.coalescing = self.broadcasts > 1
        self.broadcasts = 0
        dirty, self._dirty = self._dirty, []
        for queue in dirty:
            queue.flush()

    @property
    def slow_consumers(self) -> int:
        return self.stats.slow_consumers

    def create_queue(self, *args: Any, **kwargs: Any) -> Any:
        if not self.direct_writes:
            return super().create_queue(*args, **kwargs)
        return DirectSendQueue(self.send_queue_max, self.send_buffer_bytes, self)

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        """engine.io's per-socket ping task goes to the Pinger; anything else runs as a task."""
        if (
            self.direct_writes
            and not args
            and not kwargs
            and getattr(target, "__func__", None) is _SEND_PING
        ):
            self.pinger.schedule(target.__self__)
            return None
        return super().start_background_task(target, *args, **kwargs)

    def run_closing(self, closing: Any) -> None:
        """Run a close to its end in the background (kept referenced until then)."""
        task = asyncio.ensure_future(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def ping_timed_out(self, socket: Any) -> None:
        """No PONG within `ping_timeout`: the socket disconnects as engine.io's own check does
        (reason `ping timeout`), and its websocket is closed."""
        log.info("ping timeout", extra={"conn": str(socket.sid)[:8]})
        await socket.close(wait=False, abort=False, reason=self.reason.PING_TIMEOUT)
        conn: WebSocketConnection | None = getattr(socket, WS_KEY, None)
        if conn is not None:
            await conn.close_with(NORMAL_CLOSURE, "ping timeout")

    def close_left_open(self, socket: Any) -> None:
        """A socket engine.io closed (a server-side disconnect) whose websocket the client kept
        open: found at its next ping, closed then."""
        conn: WebSocketConnection | None = getattr(socket, WS_KEY, None)
        if conn is not None and not conn.lost:
            conn.begin_close(NORMAL_CLOSURE, "")

    def on_overflow(self, queue: DirectSendQueue) -> None:
        eio_sid = queue.eio_sid
        if eio_sid is None:
            eio_sid = next((s for s, sock in self.sockets.items() if sock.queue is queue), None)
        if eio_sid is None:
            return
        self.stats.slow_consumers += 1
        log.info("slow consumer disconnected", extra={"conn": eio_sid[:8]})
        self.run_closing(self.close_socket(eio_sid, CloseCode.SLOW_CONSUMER))

    async def close_socket(self, eio_sid: str, code: CloseCode) -> None:
        """Close one client's websocket with a close code (the disconnect handlers then run)."""
        conn: WebSocketConnection | None = getattr(self.sockets.get(eio_sid), WS_KEY, None)
        if conn is not None:
            await conn.close_with(int(code), code.name.lower())
        else:
            with contextlib.suppress(Exception):
                await self.disconnect(eio_sid)


class FanoutManager(socketio.AsyncManager):  # type: ignore[misc]
    """Room broadcasts encoded once, framed once, and written to every local socket's transport."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(event, data, namespace, room, skip_sid, callback, to, **kwargs)
            return
        started = time.perf_counter()
        room = to or room
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        packets = [
            eio_packet.Packet(eio_packet.MESSAGE, p)
            for p in (encoded if isinstance(encoded, list) else [encoded])
        ]
        frame = b"".join(ws_frame(p.encode()) for p in packets)
        eio = self.server.eio
        sockets = eio.sockets
        ns = self.rooms.get(namespace)
        members: dict[str, str] = {}
        if ns is not None:
            if isinstance(room, str) or not hasattr(room, "__len__"):
                found = ns.get(room)
                members = found._fwdm if found is not None else {}
            else:
                for r in room:
                    found = ns.get(r)
                    if found is not None:
                        members = {**members, **found._fwdm}
        skip = skip_sid if isinstance(skip_sid, list) else (skip_sid,)
        dirty = eio._dirty
        # The first broadcast of an iteration on a quiet loop is written now, to every connection
        # with nothing queued before it (the order per connection is kept); the rest wait for the
        # iteration's flush, which writes each connection's frames at once.
        direct = eio.broadcasts == 0 and not eio.coalescing
        eio.broadcasts += 1
        if not eio._flush_scheduled:
            eio.schedule_flush()  # also ends this iteration's count of broadcasts
        delivered = 0
        for sid, eio_sid in members.items():
            if sid in skip:
                continue
            sock = sockets.get(eio_sid)
            if sock is None or sock.closing or sock.closed:
                continue
            queue: DirectSendQueue = sock.queue
            if queue.transport is None:
                for p in packets:
                    queue.put_nowait(p)
                continue
            pending = queue.pending
            if direct and not pending:
                queue.write_now(frame)
            else:
                if not pending:
                    dirty.append(queue)
                pending.append(frame)
            delivered += 1
        eio.stats.observe(time.perf_counter() - started, delivered)


def client_manager(fast: bool) -> socketio.AsyncManager:
    """The Socket.IO client manager: the encode-once broadcast, or python-socketio's own (one
    encoding and one queued packet per member), kept as a fallback and for the perf guard."""
    return FanoutManager() if fast else socketio.AsyncManager()
