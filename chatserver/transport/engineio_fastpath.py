"""The engine.io / python-socketio fast path behind `chatserver.transport.seam`.

## The rule of this layer

This module is where chatserver touches engine.io, python-socketio and bidict internals (the one
other place is the gateway's socket server, `chatserver/gateway/socket_server.py`, which overrides
python-socketio's `AsyncServer._handle_*` hooks), and it touches only those listed here;
`tests/test_transport_pins.py` checks each of them, and the socket server's hooks, against the
installed packages, and pyproject.toml pins python-engineio, python-socketio, bidict and aiohttp to
the minor versions that test passed on, so an upgrade fails that test loudly instead of silently
turning the fast path off (or breaking it). Upgrading one of them means: read its changes for the
names below, widen the pin, and run the test. Nothing outside this package may import it except
through `chatserver.transport` (the gateway and the composition root use the seam's two contracts).

What it relies on, and why:
- `engineio.AsyncServer._async["websocket"]` (the driver table, copied then patched per server):
  the aiohttp websocket class engine.io instantiates as `cls(handler, server)`; replaced by
  `PlainWebSocket` to turn compression off and write frames directly.
- `engineio.AsyncServer.create_queue()`: called by `engineio.base_socket.BaseSocket.__init__` to
  make `socket.queue`; overridden to return a `DirectSendQueue` (engine.io calls `put`,
  `put_nowait`, `get_nowait`, `task_done`, `join` on it; polling, which would call `get`, is off).
- `engineio.async_drivers.aiohttp.WebSocket`: its `__init__(handler, server)` keeps `self.handler`
  and `self.server`; `handler` is the socket's bound `_websocket_handler`, so `handler.__self__` is
  the engine.io socket (how a websocket finds its socket); `environ["aiohttp.request"]` is the
  aiohttp request engine.io's aiohttp driver puts in the environ.
- engine.io socket state: `sid`, `queue`, `connected`, `upgraded`, `closing`, `closed`,
  `receive(packet)`, `close(wait=, abort=, reason=)`; server state: `sockets`, `ping_interval`,
  `ping_timeout`, `max_http_buffer_size`, `reason.TRANSPORT_CLOSE`, `disconnect(sid)`;
  `engineio.packet.Packet(encoded_packet=)` / `Packet(MESSAGE, data).encode()`,
  `engineio.exceptions.SocketIsClosedError`.
- python-socketio: `AsyncManager.emit(event, data, namespace, room, skip_sid, callback, to,
  **kwargs)` (overridden by `FanoutManager`), `manager.rooms[namespace][room]` (a bidict of
  sid -> eio_sid), `manager.server.packet_class` and `manager.server.eio`, `socketio.packet.EVENT`;
  `AsyncServer._engineio_server_class()` (overridden by the gateway's socket server to use
  `ChatEngineServer`).
- bidict: `bidict._fwdm`, the forward dict of a room's members, read without copying on the hot
  path (a broadcast iterates it once).
- aiohttp: a prepared `WebSocketResponse(compress=False)` whose `request.transport` is written
  directly with frames built by `chatserver.transport.frames` (so aiohttp's writer must hold no
  state between frames: no compression, no fragmentation), and `receive(timeout=)` / `close(code=,
  message=)`.
- `ChatEngineServer._dirty`: this module's own list of queues with frames to write in this loop
  iteration; `FanoutManager` appends to it directly (no method call per recipient).

## What it does

Transport policy under python-socketio: websocket only, no compression, bounded direct writes.

python-engineio gives each socket an unbounded queue drained by a writer task that frames every packet
per recipient (`ws.send` -> aiohttp builds the frame -> `transport.write`), and lets aiohttp negotiate
permessage-deflate (about 4x the memory per connection, and a length side channel under encryption).

Here, once a socket's websocket is open, every packet for it (acks, pings, the close packet, room
broadcasts) is framed by `chatserver.transport.frames` and written straight to its TCP transport, in the
order it was sent: there is no writer task and no queue per socket. A room broadcast is encoded once
and framed once, and the same bytes are written to every local recipient. Buffering stays bounded: a
connection whose unsent bytes pass `send_buffer_bytes` is closed with 3008 (slow consumer), and the
packets queued before the websocket opens are capped at `send_queue_max`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import engineio
import socketio
from aiohttp import WSMsgType, web
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers.aiohttp import WebSocket as EngineWebSocket
from socketio import packet as sio_packet

from chatserver.protocol import CloseCode
from chatserver.transport.frames import FanoutStats, frame_packet, ws_frame
from chatserver.transport.refusals import Reason, Refusals

log = logging.getLogger("chatserver.transport")

WS_KEY = "chat_ws"
# Unsent bytes a connection may hold, per packet of `send_queue_max`, before it counts as slow.
BYTES_PER_QUEUED_PACKET = 2048


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


class PlainWebSocket(EngineWebSocket):  # type: ignore[misc]
    """engine.io's aiohttp websocket with compression off, direct writes and a close with a code."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        self._request = request
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False, autoping=True
        )
        await self._sock.prepare(request)
        self.environ = environ
        # The handler is the engine.io socket's bound method: let the socket find its websocket.
        socket = self.handler.__self__
        setattr(socket, WS_KEY, self)
        await self.serve(socket)
        return self._sock

    async def serve(self, socket: Any) -> None:
        """engine.io's websocket handler (a fresh websocket connection, never an upgrade), without
        the writer task: packets go out through the socket's DirectSendQueue."""
        server = self.server
        ws = self._sock
        socket.connected = True
        socket.upgraded = True
        queue: DirectSendQueue = socket.queue
        transport = self._request.transport
        if transport is None:
            return
        queue.attach(socket.sid, transport)
        timeout = server.ping_interval + server.ping_timeout
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=timeout)
                except (TimeoutError, asyncio.CancelledError):
                    break
                kind = msg.type
                if kind is WSMsgType.BINARY or kind is WSMsgType.TEXT:
                    data = msg.data
                    if len(data) > server.max_http_buffer_size:
                        break
                    try:
                        packet = eio_packet.Packet(encoded_packet=data)
                    except (ValueError, IndexError, TypeError):
                        server.refusals.refuse(Reason.BAD_FRAME)  # not an Engine.IO packet
                        continue
                    try:
                        await socket.receive(packet)
                    except eio_exceptions.SocketIsClosedError:
                        break
                    except Exception:
                        # A frame a client made up must not fill the log: counted, never echoed.
                        server.refusals.refuse(Reason.BAD_FRAME)
                else:
                    break
        finally:
            queue.detach()
            with contextlib.suppress(Exception):
                await ws.close()
            await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)

    async def close_with(self, code: int, reason: str) -> None:
        """Close with a catalogued code, then drop the TCP connection: a stalled peer would
        otherwise keep its unsent buffers (and this socket) alive."""
        queue = getattr(self.handler.__self__, "queue", None)
        if isinstance(queue, DirectSendQueue):
            queue.flush()  # what was sent before the close goes out before it
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            await asyncio.wait_for(self._sock.close(code=code, message=reason.encode()), 0.5)
        transport = self._request.transport
        if transport is not None:
            transport.abort()


class ChatEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """engine.io server using PlainWebSocket and DirectSendQueue."""

    def __init__(
        self,
        *args: Any,
        send_queue_max: int = 512,
        send_buffer_bytes: int | None = None,
        direct_writes: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # Without direct writes: engine.io's own websocket, queue and writer task per connection
        # (the stock path the perf guard must tell apart; `Settings.transport_fast_path`).
        self.direct_writes = direct_writes
        if direct_writes:
            drivers: dict[str, Any] = dict(getattr(self, "_async"))  # noqa: B009 - module-level table: copy it
            self._async = drivers
            self._async["websocket"] = PlainWebSocket
        self.send_queue_max = send_queue_max
        self.send_buffer_bytes = send_buffer_bytes or send_queue_max * BYTES_PER_QUEUED_PACKET
        self.stats = FanoutStats()
        self.refusals = Refusals()
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

    def on_overflow(self, queue: DirectSendQueue) -> None:
        eio_sid = queue.eio_sid
        if eio_sid is None:
            eio_sid = next((s for s, sock in self.sockets.items() if sock.queue is queue), None)
        if eio_sid is None:
            return
        self.stats.slow_consumers += 1
        log.info("slow consumer disconnected", extra={"conn": eio_sid[:8]})
        task = asyncio.ensure_future(self.close_socket(eio_sid, CloseCode.SLOW_CONSUMER))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_socket(self, eio_sid: str, code: CloseCode) -> None:
        """Close one client's websocket with a close code (the disconnect handlers then run)."""
        ws: PlainWebSocket | None = getattr(self.sockets.get(eio_sid), WS_KEY, None)
        if ws is not None:
            await ws.close_with(int(code), code.name.lower())
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
