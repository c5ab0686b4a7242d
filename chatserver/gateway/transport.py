"""Transport policy under python-socketio: websocket only, no compression, bounded send queues.

python-engineio gives each socket an unbounded queue and lets aiohttp negotiate permessage-deflate
(about 4x the memory per connection, and a length side channel under encryption). Here every socket's
queue is bounded: a consumer that falls behind is closed with a reconnect code instead of growing
memory, and a broadcast is encoded once and put on each local queue without a task per recipient.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import engineio
import socketio
from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_drivers.aiohttp import WebSocket as EngineWebSocket
from socketio import packet as sio_packet

from chatserver.protocol import CloseCode

log = logging.getLogger("chatserver.transport")

WS_KEY = "chat_ws"


class PlainWebSocket(EngineWebSocket):  # type: ignore[misc]
    """engine.io's aiohttp websocket with compression off and a close that carries a code."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        self._request = request
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False
        )
        await self._sock.prepare(request)
        self.environ = environ
        # The handler is the engine.io socket's bound method: let the socket find its websocket.
        setattr(self.handler.__self__, WS_KEY, self)
        await self.handler(self)
        return self._sock

    async def close_with(self, code: int, reason: str) -> None:
        """Close with a catalogued code, then drop the TCP connection: a stalled peer would
        otherwise keep its unsent buffers (and this socket) alive."""
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            await asyncio.wait_for(self._sock.close(code=code, message=reason.encode()), 0.5)
        transport = self._request.transport
        if transport is not None:
            transport.abort()


class BoundedSendQueue(asyncio.Queue[Any]):
    """An engine.io send queue that refuses to grow past `limit` packets."""

    def __init__(self, limit: int, server: ChatEngineServer) -> None:
        super().__init__()
        self.limit = limit
        self.server = server
        self.overflowed = False

    def put_nowait(self, item: Any) -> None:
        # None is engine.io's sentinel that lets the writer exit: always accept it.
        if item is not None and self.qsize() >= self.limit:
            if not self.overflowed:
                self.overflowed = True
                self.server.on_overflow(self)
            return
        super().put_nowait(item)


class ChatEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """engine.io server using PlainWebSocket and BoundedSendQueue."""

    def __init__(self, *args: Any, send_queue_max: int = 512, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        drivers: dict[str, Any] = dict(getattr(self, "_async"))  # noqa: B009 - module-level table: copy it
        self._async = drivers
        self._async["websocket"] = PlainWebSocket
        self.send_queue_max = send_queue_max
        self.slow_consumers = 0
        self._closing: set[asyncio.Task[None]] = set()

    def create_queue(self, *args: Any, **kwargs: Any) -> BoundedSendQueue:
        return BoundedSendQueue(self.send_queue_max, self)

    def on_overflow(self, queue: BoundedSendQueue) -> None:
        for eio_sid, sock in list(self.sockets.items()):
            if sock.queue is queue:
                self.slow_consumers += 1
                log.info("slow consumer disconnected", extra={"conn": eio_sid[:8]})
                task = asyncio.ensure_future(self.close_socket(eio_sid, CloseCode.SLOW_CONSUMER))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
                return

    async def close_socket(self, eio_sid: str, code: CloseCode) -> None:
        """Close one client's websocket with a close code (the disconnect handlers then run)."""
        ws: PlainWebSocket | None = getattr(self.sockets.get(eio_sid), WS_KEY, None)
        if ws is not None:
            await ws.close_with(int(code), code.name.lower())
        else:
            with contextlib.suppress(Exception):
                await self.disconnect(eio_sid)


class FanoutManager(socketio.AsyncManager):  # type: ignore[misc]
    """Room broadcasts encoded once and queued on every local socket, without a task per recipient."""

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
        room = to or room
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        frames = [
            eio_packet.Packet(eio_packet.MESSAGE, p)
            for p in (encoded if isinstance(encoded, list) else [encoded])
        ]
        sockets = self.server.eio.sockets
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            sock = sockets.get(eio_sid)
            if sock is None or sock.closed or sock.closing:
                continue
            for frame in frames:
                sock.queue.put_nowait(frame)
