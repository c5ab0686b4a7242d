"""Fan-out: what the bus carries, handed to this node's sockets (`BusEvents`, chatserver/ports.py).

The bus calls these from its delivery path, one at a time: they only queue frames (an emit to a
Socket.IO room encodes once for every member) and never wait on a client socket.
"""

from __future__ import annotations

import logging

from chatserver.gateway import bans, lifecycle, seats
from chatserver.gateway.handlers import lobby
from chatserver.node import Node
from chatserver.ports import WireEvent
from chatserver.protocol import CloseCode, Push

log = logging.getLogger("chatserver.gateway")

# Pushes after which a node refreshes its copy of the room (`registry.known`): the state it would
# restore if Redis came back empty.
STATE_PUSHES = {
    Push.MEMBER_JOINED,
    Push.MEMBER_LEFT,
    Push.MEMBER_UPDATED,
    Push.ROOM_UPDATED,
    Push.SESSION_UPDATED,
    Push.PIN_CLEARED,
}


class Fanout:
    """The node's side of the bus contract: room events, directed events, gaps, lost rooms and
    restored subscriptions."""

    def __init__(self, node: Node) -> None:
        self._node = node

    async def room_event(self, room_id: str, event: WireEvent) -> None:
        """Fan one room event out to this node's members, then apply its local consequences."""
        node = self._node
        name = event["t"]
        await node.sio.emit(name, {k: v for k, v in event.items() if k != "t"}, room=room_id)
        node.stats.deliveries += len(node.registry.rooms.get(room_id, ()))
        if name in STATE_PUSHES and node.registry.has_room(room_id):
            current = await node.store.load(room_id)
            if current is not None:
                node.registry.known[room_id] = current.room
        if name == Push.MEMBER_LEFT:
            await bans.after_member_left(node, room_id, event["member_id"])
            await seats.detach(node, room_id, event["member_id"])
        elif name == Push.ROOM_ENDED:
            await lifecycle.room_ended_here(node, room_id)

    async def direct_event(self, room_id: str, member_id: str, event: WireEvent) -> None:
        """Hand a directed event (a sealed key) to its member; an absent member finds it in its
        mailbox."""
        node = self._node
        seat = node.registry.seat(room_id, member_id)
        if seat is not None:
            await node.sio.emit(
                event["t"], {k: v for k, v in event.items() if k != "t"}, to=seat.sid
            )
            lobby.after_direct(node, room_id, member_id, event)

    async def gap(self, room_id: str) -> None:
        """Events were lost between the backend and this node: members resume and learn of the gap."""
        node = self._node
        for member_id in list(node.registry.rooms.get(room_id, ())):
            seat = node.registry.seat(room_id, member_id)
            eio_sid = node.sio.manager.eio_sid_from_sid(seat.sid, "/") if seat else None
            if eio_sid is not None:
                await node.sio.eio.close_socket(eio_sid, CloseCode.RESYNC)

    async def lost(self, room_id: str, last_seq: int) -> None:
        """The backend lost a room this node holds: put it back as this node last knew it."""
        node = self._node
        room = node.registry.known.get(room_id)
        if room is not None:
            await node.service.restore(room, last_seq)
            await lifecycle.heartbeat(node)
            log.warning("room restored after backend data loss", extra={"room": room_id})

    async def resubscribed(self) -> None:
        """After a pub/sub interruption, hand every local member the sealed keys that may have been
        published while this node was not listening (clients ignore keys they already hold).

        The heartbeat comes first: if the backend lost its data, this node's seats have no holder
        until it runs, and keys sent meanwhile only reached the mailboxes read here."""
        node = self._node
        await lifecycle.heartbeat(node)
        for (room_id, member_id), seat in list(node.registry.seats.items()):
            for event in await node.bus.mailbox(room_id, member_id):
                await node.sio.emit(
                    event["t"], {k: v for k, v in event.items() if k != "t"}, to=seat.sid
                )
