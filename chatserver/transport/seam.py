"""The transport seam: what the gateway and the composition root may ask of the transport.

Everything above this line (`chatserver.app`, `chatserver.gateway`, `chatserver.metrics`) talks to
the transport through these two contracts and nothing else: it never reaches into engine.io or
python-socketio objects the transport owns (sockets, queues, websockets, manager rooms). The only
implementation today is `chatserver.transport.engineio_fastpath`, which meets them by replacing
engine.io internals; another one (a plain websocket server, a newer engine.io) has to meet the same
two contracts, and the gateway does not change.

- `EngineTransport`: the engine.io server seen from above: close one connection with a catalogued
  close code, flush what this loop iteration wrote, and the counters the metrics read.
- `RoomFanout`: the one extension point for a room broadcast (python-socketio's client manager
  `emit`, as Phoenix names its encode-once broadcast `fastlane!`): a broadcast with no ack is
  encoded once, framed once, and the same bytes are written to every local member.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from chatserver.protocol import CloseCode
from chatserver.transport.frames import FanoutStats
from chatserver.transport.refusals import Refusals


@runtime_checkable
class EngineTransport(Protocol):
    """The engine.io server the Socket.IO server runs on (`node.sio.eio`)."""

    stats: FanoutStats  # broadcasts, their latency, packets dropped, slow consumers
    refusals: Refusals  # frames refused below the protocol, counted by reason

    @property
    def slow_consumers(self) -> int: ...

    async def close_socket(self, eio_sid: str, code: CloseCode) -> None:
        """Close one connection with `code` (its disconnect handlers then run)."""
        ...

    def flush(self) -> None:
        """Write every connection's frames of this loop iteration now."""
        ...


@runtime_checkable
class RoomFanout(Protocol):
    """The client manager's broadcast: python-socketio calls it for every `sio.emit(..., to=room)`."""

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
    ) -> None: ...
