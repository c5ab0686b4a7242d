"""A seat on this node: held in presence, attached to its connection, subscribed on the bus."""

from __future__ import annotations

from chatserver.gateway.state import Connection, Seat
from chatserver.node import Node


async def hold(node: Node, room_id: str, member_id: str) -> None:
    """Record this node as the seat's holder, with a deadline the heartbeat keeps moving."""
    deadline = node.clock.now() + node.settings.presence_ttl_s
    await node.presence.touch(room_id, member_id, node.node_id, deadline)


async def attach(node: Node, conn: Connection, seat: Seat) -> None:
    """Bind a seat to a connection, enter its Socket.IO room and subscribe the node if first."""
    conn.seats[seat.room_id] = seat
    first = node.registry.add_seat(seat)
    await node.sio.enter_room(conn.sid, seat.room_id)
    if first:
        await node.bus.subscribe(seat.room_id)


async def detach(
    node: Node, room_id: str, member_id: str, *, keep_subscription: bool = False
) -> None:
    """Undo `attach`; unsubscribe the node when its last local seat in the room goes."""
    seat = node.registry.remove_seat(room_id, member_id)
    if seat is not None and seat.sid in node.registry.connections:
        await node.sio.leave_room(seat.sid, room_id)
    if not keep_subscription and not node.registry.has_room(room_id):
        await node.bus.unsubscribe(room_id)
