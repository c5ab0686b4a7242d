"""The Socket.IO gateway: `install` puts a node's handlers on its server and its fan-out on its bus.

Where things live: `dispatch.py` (the handler registry and the endpoint wrapper),
`connections.py` (connect, disconnect), `handlers/` (one module per feature), `common.py` (what
the handlers share), `seats.py` (attach, detach, hold), `fanout.py` (the bus's `BusEvents`),
`lifecycle.py` (heartbeat, lapsed seats, sweeps, the end of a room).
"""

from __future__ import annotations

from chatserver.gateway import dispatch
from chatserver.gateway.fanout import Fanout
from chatserver.node import Node


def install(node: Node) -> None:
    """Register every handler on the node's Socket.IO server and the fan-out on its bus."""
    # Parses the proxy lists now (a bad entry fails at start, not at connect); websockets that
    # have not connected yet count per address with the same hash as every other limit.
    node.sio.pending.address_key = node.abuse.address_key
    dispatch.register(node)
    node.bus.set_events(Fanout(node))
