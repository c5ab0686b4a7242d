"""A minimal Socket.IO (msgpack, websocket-only) client for load generation.

python-socketio's client spends more CPU per message than the server it measures; this one decodes only
what it must (acks it waits for) and counts everything else.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
from typing import Any

import aiohttp
import msgpack

EVENT, ACK, CONNECT = 2, 3, 0


class RawClient:
    """One connection: `call` sends an event and awaits its ack; pushes are counted (and optionally kept)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, keep: bool = False) -> None:
        self.session = session
        self.url = url.rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
        self.keep = keep
        self.pushes = 0
        self.kept: list[Any] = []
        self._ids = itertools.count(1)
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.counting = False

    async def open(self) -> None:
        self.ws = await self.session.ws_connect(self.url, compress=0, max_msg_size=0)
        opening = await self.ws.receive()
        assert isinstance(opening.data, str) and opening.data.startswith("0"), opening
        await self.ws.send_bytes(msgpack.dumps({"type": CONNECT, "nsp": "/"}))
        connected = await self.ws.receive()
        assert msgpack.loads(connected.data)["type"] == CONNECT
        self._reader = asyncio.create_task(self._read())

    async def call(self, event: str, payload: Any) -> Any:
        future = self.send(event, payload)
        return await future

    def send(self, event: str, payload: Any) -> asyncio.Future[Any]:
        assert self.ws is not None
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        frame = msgpack.dumps({"type": EVENT, "data": [event, payload], "nsp": "/", "id": ack_id})
        self._pending_write = asyncio.ensure_future(self.ws.send_bytes(frame))
        return future

    async def _read(self) -> None:
        assert self.ws is not None
        ws = self.ws
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                data: bytes = msg.data
                # An ack packet's map starts with "type": 3; pushes are counted without decoding.
                if b"\xa4type\x03" in data[:24]:
                    packet = msgpack.loads(data)
                    future = self._acks.pop(packet.get("id"), None)
                    if future is not None and not future.done():
                        future.set_result(packet["data"][0])
                    continue
                if self.counting:
                    self.pushes += 1
                    if self.keep:
                        self.kept.append(msgpack.loads(data)["data"])
            elif msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "2":
                    await ws.send_str("3")
            else:
                return

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.ws is not None:
            await self.ws.close()


class FastClient(asyncio.Protocol):
    """A websocket Socket.IO client on a bare asyncio protocol: frames are counted, not parsed.

    The load generator must not be the bottleneck: aiohttp's client costs several microseconds per
    received message (a reader, a queue, a coroutine wake-up); this one walks frame headers in
    `data_received` and decodes only acks (and, when `on_push` is set, pushes). Same API as RawClient.
    """

    def __init__(self, url: str, keep: bool = False) -> None:
        rest = url.split("://", 1)[1].rstrip("/")
        host, _, port = rest.partition(":")
        self.host, self.port = host, int(port or 80)
        self.keep = keep
        self.pushes = 0
        self.kept: list[Any] = []
        self.counting = False
        self.on_push: Any = None  # called with (payload bytes) for each push when set
        self.close_code: int | None = None
        self.closed: asyncio.Future[None] | None = None
        self._ids = itertools.count(1)
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._buf = bytearray()
        self._handshaken = False
        self._waiter: asyncio.Future[Any] | None = None
        self.transport: asyncio.Transport | None = None

    # -- connection ------------------------------------------------------------------------------
    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.closed = loop.create_future()
        await loop.create_connection(lambda: self, self.host, self.port)
        assert self.transport is not None
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {self.host}:{self.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        opening = await self._next()
        assert isinstance(opening, str) and opening.startswith("0"), opening
        self._send_frame(msgpack.dumps({"type": CONNECT, "nsp": "/"}), 0x2)
        connected = await self._next()
        assert isinstance(connected, bytes) and msgpack.loads(connected)["type"] == CONNECT

    async def _next(self) -> Any:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(self._waiter, 30)
        finally:
            self._waiter = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        for future in self._acks.values():
            if not future.done():
                future.set_exception(ConnectionError("closed"))
        self._acks.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("closed"))
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)

    # -- sending ---------------------------------------------------------------------------------
    def _send_frame(self, payload: bytes, opcode: int) -> None:
        # Clients must mask; a zero mask key leaves the payload as it is.
        n = len(payload)
        if n < 126:
            header = bytes((0x80 | opcode, 0x80 | n))
        elif n < 65536:
            header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
        assert self.transport is not None
        self.transport.write(header + b"\x00\x00\x00\x00" + payload)

    async def call(self, event: str, payload: Any) -> Any:
        return await self.send(event, payload)

    def send(self, event: str, payload: Any) -> asyncio.Future[Any]:
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        self._send_frame(
            msgpack.dumps({"type": EVENT, "data": [event, payload], "nsp": "/", "id": ack_id}), 0x2
        )
        return future

    # -- receiving -------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                raise ConnectionError(status.decode())
            del buf[: end + 4]
            self._handshaken = True
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + n
            if end > size:
                break
            opcode = b0 & 0x0F
            if opcode == 0x2:
                if b"\xa4type\x03" in buf[start : start + 24]:
                    self._ack(bytes(buf[start:end]))
                elif self._waiter is not None and not self._waiter.done():
                    self._waiter.set_result(bytes(buf[start:end]))
                elif self.counting:
                    self.pushes += 1
                    if self.on_push is not None:
                        self.on_push(bytes(buf[start:end]))
                    elif self.keep:
                        self.kept.append(msgpack.loads(bytes(buf[start:end]))["data"])
            elif opcode == 0x1:
                text = bytes(buf[start:end]).decode()
                if text == "2":
                    self._send_frame(b"3", 0x1)
                elif self._waiter is not None and not self._waiter.done():
                    self._waiter.set_result(text)
            elif opcode == 0x8:
                if n >= 2:
                    self.close_code = int.from_bytes(buf[start : start + 2], "big")
                if self.transport is not None:
                    self.transport.close()
            pos = end
        if pos:
            del buf[:pos]

    def _ack(self, data: bytes) -> None:
        packet = msgpack.loads(data)
        future = self._acks.pop(packet.get("id"), None)
        if future is not None and not future.done():
            future.set_result(packet["data"][0])

    async def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
