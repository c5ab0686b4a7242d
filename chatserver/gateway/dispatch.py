"""The explicit registry of event handlers, and the endpoint that wraps each one: it parses the
payload against the event's schema, refuses while the node drains or the backend is down, counts
the outcome and turns every failure into an error ack (never an exception to the client)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from chatserver.gateway import connections
from chatserver.gateway.handlers import (
    lobby,
    messages,
    qa,
    reports,
    resume,
    rooms,
    sessions,
    staff,
    therapist,
)
from chatserver.gateway.state import Connection
from chatserver.node import Node
from chatserver.ports import BusUnavailable
from chatserver.protocol import SCHEMAS, ErrorCode, Event, Payload, ProtocolError, parse

log = logging.getLogger("chatserver.gateway")

Handler = Callable[[Node, Connection, Any], Awaitable[dict[str, Any]]]

HANDLERS: dict[Event, Handler] = {
    Event.ROOM_CREATE: rooms.room_create,
    Event.ROOM_CHALLENGE: rooms.room_challenge,
    Event.ROOM_JOIN: rooms.room_join,
    Event.ROOM_RESUME: resume.room_resume,
    Event.ROOM_CATCHUP: resume.room_catchup,
    Event.ROOM_LEAVE: rooms.room_leave,
    Event.ROOM_LIST: rooms.room_list,
    Event.ROOM_INFO: rooms.room_info,
    Event.ROOM_RENAME: rooms.room_rename,
    Event.MSG_SEND: messages.msg_send,
    Event.KEY_SEND: messages.key_send,
    Event.TYPING: messages.typing,
    Event.THERAPIST_CHALLENGE: therapist.therapist_challenge,
    Event.THERAPIST_SIGNIN: therapist.therapist_signin,
    Event.SESSION_CREATE: sessions.session_create,
    Event.LOBBY_KNOCK: lobby.lobby_knock,
    Event.LOBBY_LIST: lobby.lobby_list,
    Event.LOBBY_ADMIT: lobby.lobby_admit,
    Event.LOBBY_DECLINE: lobby.lobby_decline,
    Event.MEMBER_MUTE: staff.member_mute,
    Event.MEMBER_UNMUTE: staff.member_unmute,
    Event.MEMBER_REMOVE: staff.member_remove,
    Event.MEMBER_ROLE: staff.member_role,
    Event.ROOM_SETTINGS: staff.room_settings,
    Event.ROOM_END: staff.room_end,
    Event.REPORT_SEND: reports.report_send,
    Event.REPORT_REVIEW: reports.report_review,
    Event.QA_ASK: qa.qa_ask,
    Event.PIN_CLEAR: messages.pin_clear,
}


def register(node: Node) -> None:
    """Put the connection handlers and every event's endpoint on the node's Socket.IO server."""
    sio = node.sio

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        return await connections.connect(node, sid, environ)

    async def disconnect(sid: str, reason: Any = None) -> None:
        await connections.disconnect(node, sid)

    async def unknown(event: str, sid: str, *args: Any) -> dict[str, Any]:
        return ProtocolError(ErrorCode.UNKNOWN_EVENT, "Unknown event.").to_ack()

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)
    sio.on("*", unknown)
    for event, handler in HANDLERS.items():
        sio.on(str(event), endpoint(node, str(event), SCHEMAS[event], handler))


def endpoint(
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
            # Counted like every other refusal: an outage shows in chatserver_requests_total.
            node.stats.requests[f"{name}:{ErrorCode.UNAVAILABLE}"] += 1
            return ProtocolError(
                ErrorCode.UNAVAILABLE, "The cluster backend is unreachable; retry.", 1.0
            ).to_ack()
        except Exception as exc:
            # Type and location only: exception messages can carry client data.
            node.stats.requests[f"{name}:{ErrorCode.INTERNAL}"] += 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.error(
                "handler failed",
                extra={"error": type(exc).__name__, "at": f"{where.filename}:{where.lineno}"},
            )
            return ProtocolError(
                ErrorCode.INTERNAL, "Internal error; nothing was changed."
            ).to_ack()

    return endpoint
