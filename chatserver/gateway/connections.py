"""A connection's arrival and departure: its buckets and address group, and on disconnect its
seats kept for the resume grace and its lobby places given up."""

from __future__ import annotations

from typing import Any

from chatserver.gateway import seats
from chatserver.gateway.handlers import lobby
from chatserver.gateway.state import Connection
from chatserver.node import Node
from chatserver.ports import BusUnavailable
from chatserver.token_bucket import TokenBucket

# What a connection's environ must keep after connect: `chatserver.addresses.environ_address`
# reads the address from them.
ENVIRON_KEPT = ("aiohttp.request", "HTTP_X_FORWARDED_FOR")


def trim_environ(environ: dict[str, Any]) -> None:
    """Drop the copy of every request header (user agent, cookies, languages...) that
    python-socketio keeps for a connection's lifetime: less to hold about a person, and about
    0.3 KB less per connection. The dict is shared with engine.io, which has read it by now."""
    for key in [k for k in environ if k not in ENVIRON_KEPT]:
        del environ[key]


async def connect(node: Node, sid: str, environ: dict[str, Any]) -> bool:
    if node.draining or sid in node.registry.connections:
        return False
    s = node.settings
    node.registry.connections[sid] = Connection(
        sid=sid,
        msg_bucket=TokenBucket(s.msg_rate_per_s, s.msg_burst),
        typing_bucket=TokenBucket(s.typing_rate_per_s, s.typing_burst),
        join_bucket=TokenBucket(s.join_rate_per_s, s.join_burst),
        create_bucket=TokenBucket(s.create_rate_per_s, s.create_burst),
        control_bucket=TokenBucket(s.control_rate_per_s, s.control_burst),
    )
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
