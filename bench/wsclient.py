"""A minimal Socket.IO (msgpack, websocket-only) client for load generation.

python-socketio's client spends more CPU per message than the server it measures; this one decodes only
what it must (acks it waits for) and counts everything else.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp
import msgpack

EVENT, ACK, CONNECT = 2, 3, 0
ACK_PREFIXES = (b"\x84\xa4type\x03", b"\x83\xa4type\x03")


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
        await self.ws.send_bytes(msgpack.dumps({"type": CONNECT, "data": None, "nsp": "/"}))
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
                if data[:7] in ACK_PREFIXES:
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
