"""A connection's arrival and departure: its buckets and address group, and on disconnect its
seats kept for the resume grace and its lobby places given up."""

from __future__ import annotations

from typing import Any

from chatserver.config import Settings
from chatserver.gateway import seats
from chatserver.gateway.handlers import lobby
from chatserver.gateway.state import Connection, Limits
from chatserver.node import Node
from chatserver.ports import BusUnavailable

# What a connection's environ must keep after connect: `chatserver.addresses.environ_address`
# reads the address from them.
ENVIRON_KEPT = ("aiohttp.request", "HTTP_X_FORWARDED_FOR")


def trim_environ(environ: dict[str, Any]) -> None:
    """Drop the copy of every request header (user agent, cookies, languages...) that
    python-socketio keeps for a connection's lifetime: less to hold about a person. The dict is
    shared with engine.io, which has read it by now: emptied (which, unlike deleting its keys one
    by one, frees its table, about 0.7 KB) and refilled with what is kept."""
    kept = {k: environ[k] for k in ENVIRON_KEPT if k in environ}
    environ.clear()
    environ.update(kept)


def limits_of(settings: Settings) -> Limits:
    """The per-connection bucket limits of a node's settings."""
    s = settings
    return Limits(
        msg=(s.msg_rate_per_s, s.msg_burst),
        typing=(s.typing_rate_per_s, s.typing_burst),
        join=(s.join_rate_per_s, s.join_burst),
        create=(s.create_rate_per_s, s.create_burst),
        control=(s.control_rate_per_s, s.control_burst),
    )


async def connect(node: Node, sid: str, environ: dict[str, Any]) -> bool:
    if node.draining or sid in node.registry.connections:
        return False
    registry = node.registry
    if registry.limits is None:  # one for the node, shared by every connection record
        registry.limits = limits_of(node.settings)
    registry.connections[sid] = Connection(sid, registry.limits)
    node.abuse.connected(sid, environ)
    trim_environ(environ)
    return True


async def disconnect(node: Node, sid: str) -> None:
    conn = node.registry.connections.get(sid)
    held = [(s.room_id, s.member_id) for s in conn.seats.values()] if conn else []
    node.abuse.disconnected(sid, held)
    if conn is None:
        return
    # The seat stays in the room until the grace lapses, so the member can resume (on any node)
    # without an epoch bump; whichever node sees it lapse announces the departure.
    deadline = node.clock.now() + node.settings.resume_grace_s
    for seat in list(conn.seats.values()):
        await seats.detach(node, seat.room_id, seat.member_id)
        try:
            await node.presence.touch(seat.room_id, seat.member_id, node.node_id, deadline)
        except BusUnavailable:
            continue  # the lapse of the last heartbeat bounds it anyway
    await lobby.on_disconnect(node, conn)
    node.registry.connections.pop(sid, None)
