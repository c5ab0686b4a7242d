"""The Socket.IO gateway: an explicit registry of event handlers, connection lifecycle and fan-out."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from chatserver import abuse
from chatserver.gateway import bans, message_handlers, moderation_handlers, room_handlers
from chatserver.gateway.state import Connection
from chatserver.node import Node
from chatserver.ports import BusUnavailable, WireEvent
from chatserver.protocol import (
    SCHEMAS,
    CloseCode,
    ErrorCode,
    Event,
    Payload,
    ProtocolError,
    Push,
    parse,
)
from chatserver.ratelimit import TokenBucket
from rooms import Disconnect

log = logging.getLogger("chatserver.gateway")

Handler = Callable[[Node, Connection, Any], Awaitable[dict[str, Any]]]

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

HANDLERS: dict[Event, Handler] = {
    Event.ROOM_CREATE: room_handlers.room_create,
    Event.ROOM_CHALLENGE: room_handlers.room_challenge,
    Event.ROOM_JOIN: room_handlers.room_join,
    Event.ROOM_RESUME: room_handlers.room_resume,
    Event.ROOM_CATCHUP: room_handlers.room_catchup,
    Event.ROOM_LEAVE: room_handlers.room_leave,
    Event.ROOM_LIST: room_handlers.room_list,
    Event.ROOM_INFO: room_handlers.room_info,
    Event.ROOM_RENAME: room_handlers.room_rename,
    Event.MSG_SEND: message_handlers.msg_send,
    Event.KEY_SEND: message_handlers.key_send,
    Event.TYPING: message_handlers.typing,
    Event.THERAPIST_CHALLENGE: moderation_handlers.therapist_challenge,
    Event.THERAPIST_SIGNIN: moderation_handlers.therapist_signin,
    Event.SESSION_CREATE: moderation_handlers.session_create,
    Event.LOBBY_KNOCK: moderation_handlers.lobby_knock,
    Event.LOBBY_LIST: moderation_handlers.lobby_list,
    Event.LOBBY_ADMIT: moderation_handlers.lobby_admit,
    Event.LOBBY_DECLINE: moderation_handlers.lobby_decline,
    Event.MEMBER_MUTE: moderation_handlers.member_mute,
    Event.MEMBER_UNMUTE: moderation_handlers.member_unmute,
    Event.MEMBER_REMOVE: moderation_handlers.member_remove,
    Event.MEMBER_ROLE: moderation_handlers.member_role,
    Event.ROOM_SETTINGS: moderation_handlers.room_settings,
    Event.ROOM_END: moderation_handlers.room_end,
    Event.REPORT_SEND: moderation_handlers.report_send,
    Event.REPORT_REVIEW: moderation_handlers.report_review,
    Event.QA_ASK: moderation_handlers.qa_ask,
    Event.PIN_CLEAR: message_handlers.pin_clear,
}


# What a connection's environ must keep after connect: `chatserver.addresses.environ_address`
# reads the address from them.
ENVIRON_KEPT = ("aiohttp.request", "HTTP_X_FORWARDED_FOR")


def trim_environ(environ: dict[str, Any]) -> None:
    """Drop the copy of every request header (user agent, cookies, languages...) that
    python-socketio keeps for a connection's lifetime: less to hold about a person, and about
    0.3 KB less per connection. The dict is shared with engine.io, which has read it by now."""
    for key in [k for k in environ if k not in ENVIRON_KEPT]:
        del environ[key]


def install(node: Node) -> None:
    """Register every handler on the node's Socket.IO server and the bus callbacks."""
    sio = node.sio
    # Parses the proxy lists now (a bad entry fails at start, not at connect); websockets that
    # have not connected yet count per address with the same hash as every other limit.
    sio.pending.address_key = abuse.guard(node).address_key

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
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
        abuse.guard(node).connected(sid, environ)
        trim_environ(environ)
        return True

    async def disconnect(sid: str, reason: Any = None) -> None:
        conn = node.registry.connections.get(sid)
        seats = [(s.room_id, s.member_id) for s in conn.seats.values()] if conn else []
        abuse.guard(node).disconnected(sid, seats)
        if conn is None:
            return
        # The seat stays in the room until the grace lapses, so the member can resume (on any node)
        # without an epoch bump; whichever node sees it lapse announces the departure.
        deadline = node.clock.now() + node.settings.resume_grace_s
        for seat in list(conn.seats.values()):
            await room_handlers.detach(node, seat.room_id, seat.member_id)
            try:
                await node.presence.touch(seat.room_id, seat.member_id, node.node_id, deadline)
            except BusUnavailable:
                continue  # the lapse of the last heartbeat bounds it anyway
        await moderation_handlers.on_disconnect(node, conn)
        node.registry.connections.pop(sid, None)

    async def unknown(event: str, sid: str, *args: Any) -> dict[str, Any]:
        return ProtocolError(ErrorCode.UNKNOWN_EVENT, "Unknown event.").to_ack()

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)
    sio.on("*", unknown)
    for event, handler in HANDLERS.items():
        sio.on(str(event), _endpoint(node, str(event), SCHEMAS[event], handler))
    node.bus.set_handlers(
        lambda r, e: deliver_room(node, r, e),
        lambda r, m, e: deliver(node, r, m, e),
        lambda r, seq: restore(node, r, seq),
        lambda: redeliver_mailboxes(node),
    )


def _endpoint(
    node: Node, name: str, schema: type[Payload], handler: Handler
) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def endpoint(sid: str, *args: Any) -> dict[str, Any]:
        conn = node.registry.connections.get(sid)
        try:
            if conn is None or node.draining:
                raise ProtocolError(ErrorCode.UNAVAILABLE, "The server is not taking requests.")
            if not node.bus.healthy():
                raise BusUnavailable("not ready")
            if len(args) > 1:
                raise ProtocolError(ErrorCode.BAD_REQUEST, "Send one payload map.")
            ack = await handler(node, conn, parse(schema, args[0] if args else None))
            node.stats.requests[f"{name}:ok"] += 1
            return ack
        except ProtocolError as exc:
            node.stats.requests[f"{name}:{exc.code}"] += 1
            return exc.to_ack()
        except BusUnavailable:
            return ProtocolError(
                ErrorCode.UNAVAILABLE, "The cluster backend is unreachable; retry.", 1.0
            ).to_ack()
        except Exception as exc:
            # Type and location only: exception messages can carry client data.
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.error(
                "handler failed",
                extra={"error": type(exc).__name__, "at": f"{where.filename}:{where.lineno}"},
            )
            return ProtocolError(
                ErrorCode.INTERNAL, "Internal error; nothing was changed."
            ).to_ack()

    return endpoint


async def deliver_room(node: Node, room_id: str, event: WireEvent) -> None:
    """Fan one room event out to this node's members, then apply its local consequences."""
    name = event["t"]
    if name == "resync":
        # Events were lost between Redis and this node: members resume and learn of the gap.
        for member_id in list(node.registry.rooms.get(room_id, ())):
            seat = node.registry.seat(room_id, member_id)
            eio_sid = node.sio.manager.eio_sid_from_sid(seat.sid, "/") if seat else None
            if eio_sid is not None:
                await node.sio.eio.close_socket(eio_sid, CloseCode.RESYNC)
        return
    await node.sio.emit(name, {k: v for k, v in event.items() if k != "t"}, room=room_id)
    node.stats.deliveries += len(node.registry.rooms.get(room_id, ()))
    if name in STATE_PUSHES and node.registry.has_room(room_id):
        current = await node.store.load(room_id)
        if current is not None:
            node.registry.known[room_id] = current.room
    if name == Push.MEMBER_LEFT:
        await bans.after_member_left(node, room_id, event["member_id"])
        await room_handlers.detach(node, room_id, event["member_id"])
    elif name == Push.ROOM_ENDED:
        for member_id in list(node.registry.rooms.get(room_id, ())):
            await room_handlers.detach(node, room_id, member_id)


async def restore(node: Node, room_id: str, seq: int) -> None:
    """Redis lost a room this node holds: put it back as this node last knew it."""
    room = node.registry.known.get(room_id)
    if room is not None:
        await node.service.restore(room, seq)
        await heartbeat(node)
        log.warning("room restored after backend data loss", extra={"room": room_id})


async def redeliver_mailboxes(node: Node) -> None:
    """After a pub/sub interruption, hand every local member the sealed keys that may have been
    published while this node was not listening (clients ignore keys they already hold).

    The heartbeat comes first: if Redis lost its data, this node's seats have no holder until it
    runs, and keys sent meanwhile only reached the mailboxes read here."""
    await heartbeat(node)
    for (room_id, member_id), seat in list(node.registry.seats.items()):
        for event in await node.bus.mailbox(room_id, member_id):
            await node.sio.emit(
                event["t"], {k: v for k, v in event.items() if k != "t"}, to=seat.sid
            )


async def deliver(node: Node, room_id: str, member_id: str, event: WireEvent) -> None:
    """Hand a directed event (a sealed key) to its member; an absent member finds it in its mailbox."""
    seat = node.registry.seat(room_id, member_id)
    if seat is not None:
        await node.sio.emit(event["t"], {k: v for k, v in event.items() if k != "t"}, to=seat.sid)
        moderation_handlers.after_direct(node, room_id, member_id, event)


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
