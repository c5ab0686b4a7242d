"""Time on a node: the heartbeat of its seats, the seats that lapsed, the periodic sweep, and the
one home of "a room ends".

A room ends by a host's `room.end` (`end_room`) or by a deadline the sweep finds (`sweep`). Either
way its waiters are told first (they are on no room channel), the room service publishes
`room.ended` and drops the room from the store and the bus, and `purge` removes the seats'
presence entries. Every node that holds members of the room detaches them when `room.ended`
reaches it (`room_ended_here`, called by the fan-out).
"""

from __future__ import annotations

import asyncio
import logging

from chatserver.gateway import seats
from chatserver.gateway.common import load_room
from chatserver.node import Node
from chatserver.protocol import ProtocolError
from chatserver.protocol.pushes import LobbyDeclinedPush, to_wire
from rooms import Disconnect, End, Refusal, Room, decide

# The sweep's log lines keep the logger they had in `chatserver.app` (operators filter on it).
log = logging.getLogger("chatserver.app")


async def heartbeat(node: Node) -> None:
    """Move the deadline of every seat this node holds, so a dead node's seats lapse on their own."""
    deadline = node.clock.now() + node.settings.presence_ttl_s
    await node.presence.touch_many(list(node.registry.seats), node.node_id, deadline)


async def sweep_lapsed_seats(node: Node) -> None:
    """Seats that nobody resumed in time (or whose node died) leave the room, announced once."""
    now = node.clock.now()
    for room_id, member_id in await node.presence.claim_expired(now):
        try:
            await node.service.apply(room_id, Disconnect(member_id=member_id, now=now))
        except ProtocolError:
            continue


async def sweep_forever(node: Node) -> None:
    """Lifecycle deadlines and lapsed seats; touches this node's seats every heartbeat."""
    next_heartbeat = 0.0
    while True:
        await asyncio.sleep(node.settings.sweep_interval_s)
        try:
            if node.clock.now() >= next_heartbeat:
                await heartbeat(node)
                next_heartbeat = node.clock.now() + node.settings.heartbeat_interval_s
            await sweep_lapsed_seats(node)
            await sweep_rooms(node)
            await node.bus.expire_buffers()
        except Exception as exc:
            log.error("sweep failed", extra={"error": type(exc).__name__})


async def sweep_rooms(node: Node) -> None:
    """Apply the rooms' due deadlines (the core decides which end), ending rooms as `end_room`."""
    for room in await node.service.sweep(before_end=lambda room: tell_waiters_ended(node, room)):
        await purge(node, room)


async def end_room(node: Node, room_id: str, actor: str) -> int:
    """A host ends the room: refused before any waiter is told, else the sequence of `room.ended`."""
    before = await load_room(node, room_id)
    dry_run = decide(before, End(actor, node.clock.now()), node.policy)
    if isinstance(dry_run, Refusal):  # refuse before any waiter is told
        raise ProtocolError(str(dry_run.code), dry_run.message)
    await tell_waiters_ended(node, before)
    _, seq = await node.service.apply(room_id, End(actor, node.clock.now()))
    await purge(node, before)
    return seq


async def tell_waiters_ended(node: Node, room: Room) -> None:
    """Nobody is left waiting in the lobby of a room that is over."""
    for waiter in room.waiting:
        event = to_wire(LobbyDeclinedPush(room_id=room.room_id, reason="ended"))
        await node.bus.send_direct(room.room_id, waiter.member_id, event)


async def purge(node: Node, room: Room) -> None:
    """After the end, nothing of the room stays in shared state: the store dropped its state and
    the bus its sequence, buffer, chains, holders and mailboxes; here go the seats' presence
    entries."""
    for member_id in [m.member_id for m in room.members] + [w.member_id for w in room.waiting]:
        await node.presence.remove(room.room_id, member_id)


async def room_ended_here(node: Node, room_id: str) -> None:
    """`room.ended` reached this node: its local seats in the room go."""
    for member_id in list(node.registry.rooms.get(room_id, ())):
        await seats.detach(node, room_id, member_id)
