"""The transport: websocket connections under python-socketio, behind a named seam.

- `seam`: the contracts the gateway and the composition root use (`EngineTransport`,
  `RoomFanout`); read this to know what the transport offers.
- `engineio_fastpath`: the implementation on engine.io / python-socketio internals, with the rule
  of the layer (which internals, why, and the test that pins them) at its top.
"""

from __future__ import annotations

from chatserver.transport.engineio_fastpath import (
    BYTES_PER_QUEUED_PACKET,
    WS_KEY,
    ChatEngineServer,
    DirectSendQueue,
    FanoutManager,
    Pinger,
    PlainWebSocket,
    WebSocketConnection,
    client_manager,
)
from chatserver.transport.seam import EngineTransport, RoomFanout

__all__ = [
    "BYTES_PER_QUEUED_PACKET",
    "WS_KEY",
    "ChatEngineServer",
    "DirectSendQueue",
    "EngineTransport",
    "FanoutManager",
    "Pinger",
    "PlainWebSocket",
    "RoomFanout",
    "WebSocketConnection",
    "client_manager",
]
