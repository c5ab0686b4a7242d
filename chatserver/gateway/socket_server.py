"""python-socketio's server, closed to what the protocol does not define.

The library dispatches a client's event named `connect` or `disconnect` to the connection handlers
(a fresh connection record: new buckets, no limits, orphaned seats), logs a stray namespace verbatim,
and logs every frame it cannot decode with a traceback. Here, below the event handlers: reserved
names and non-string names are refused with `unknown_event`, only the "/" namespace exists, stray
acks are dropped, a frame that does not decode is counted, and a websocket that never sends the
Socket.IO connect packet is closed at its deadline. All of it is counted by reason
(`chatserver.transport.refusals`), never logged with what the client sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
from socketio import packet as sio_packet

from chatserver.gateway.pending import PendingConnections
from chatserver.protocol import CloseCode, ErrorCode, ProtocolError
from chatserver.transport import ChatEngineServer
from chatserver.transport.refusals import Reason, Refusals

NAMESPACE = "/"
# Names python-socketio (server or client) treats specially; a client may never trigger them.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "message", "*"})


class ChatSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio server on ChatEngineServer, refusing what the protocol does not define."""

    def __init__(
        self,
        *args: Any,
        connect_timeout_s: float = 10.0,
        max_pending_per_address: int = 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.refusals: Refusals = self.eio.refusals  # one count for both layers
        self.pending = PendingConnections(max_pending_per_address, connect_timeout_s)
        self._closing: set[asyncio.Task[None]] = set()

    def _engineio_server_class(self) -> type[ChatEngineServer]:
        return ChatEngineServer

    # Engine.IO events ---------------------------------------------------------------------------

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> bool | None:
        if not self.pending.open(eio_sid, environ, self._connect_lapsed):
            self.refusals.refuse(Reason.PENDING_LIMIT)
            return False  # engine.io answers 401 and never opens the websocket
        await super()._handle_eio_connect(eio_sid, environ)
        return None

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """The library's dispatch, without binary attachments: with msgpack nothing needs them,
        and a BINARY_EVENT would make the connection take its next frames as attachments."""
        try:
            pkt = self.packet_class(encoded_packet=data)
        except Exception:
            self.refusals.refuse(Reason.BAD_FRAME)  # bad msgpack, not a packet map, ...
            return
        kind = pkt.packet_type
        if kind == sio_packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind == sio_packet.ACK:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind == sio_packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == sio_packet.DISCONNECT and (pkt.namespace or NAMESPACE) == NAMESPACE:
            await self._handle_disconnect(eio_sid, NAMESPACE, self.reason.CLIENT_DISCONNECT)
        else:
            self.refusals.refuse(Reason.BAD_FRAME)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        self.pending.settle(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)

    def _connect_lapsed(self, eio_sid: str) -> None:
        self.refusals.refuse(Reason.NO_CONNECT)
        task = asyncio.ensure_future(self.eio.close_socket(eio_sid, CloseCode.CONNECT_TIMEOUT))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # Socket.IO packets ---------------------------------------------------------------------------

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        if (namespace or NAMESPACE) != NAMESPACE:
            self.refusals.refuse(Reason.NAMESPACE)
        await super()._handle_connect(eio_sid, namespace, data)
        if self.manager.sid_from_eio_sid(eio_sid, NAMESPACE) is not None:
            self.pending.settle(eio_sid)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        if (namespace or NAMESPACE) != NAMESPACE:
            self.refusals.refuse(Reason.NAMESPACE)
            return
        name = data[0] if isinstance(data, list) and data else None
        if isinstance(name, str) and name not in RESERVED_EVENTS:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        self.refusals.refuse(Reason.RESERVED_EVENT if isinstance(name, str) else Reason.BAD_EVENT)
        sid = self.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
        if id is not None and sid is not None and self.manager.is_connected(sid, NAMESPACE):
            ack = ProtocolError(ErrorCode.UNKNOWN_EVENT, "Unknown event.").to_ack()
            await self._send_packet(
                eio_sid, self.packet_class(sio_packet.ACK, namespace=NAMESPACE, data=[ack], id=id)
            )

    async def _handle_ack(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace or NAMESPACE)
        # Key 0 of the library's table is its id counter, not a callback.
        if not isinstance(id, int) or id <= 0 or id not in self.manager.callbacks.get(sid, {}):
            self.refusals.refuse(Reason.STRAY_ACK)
            return
        await super()._handle_ack(eio_sid, namespace, id, data)
