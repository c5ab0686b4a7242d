"""The connection: one Socket.IO client, its calls, reconnection, and the rooms it holds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import socketio

from chatserver import credentials, e2ee
from chatserver.client.common import CLOSE_TIMEOUT_S, _within, authority
from chatserver.client.errors import ChatError, ConnectionLost, _checked
from chatserver.client.events import CreatedRoom
from chatserver.client.room import Room
from chatserver.client.waiting import Waiting
from chatserver.e2ee.charter import make_charter
from chatserver.e2ee.seat import sign_seat
from chatserver.links import RoomLink, listed_link, parse_link, private_link, server_url
from chatserver.protocol import Push
from chatserver.protocol.ids import b64id, unb64id

log = logging.getLogger("chatserver.client")


class ChatClient:
    """One Socket.IO connection to a chatserver node; an async context manager.

    Reconnects by itself with exponential backoff (`reconnect_delay` doubling up to
    `reconnect_delay_max`, for at most `reconnect_timeout` seconds) and resumes every room.
    """

    def __init__(
        self,
        url: str,
        *,
        call_timeout: float = 10.0,
        key_wait: float = 5.0,
        reconnect_delay: float = 0.25,
        reconnect_delay_max: float = 5.0,
        reconnect_timeout: float = 300.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = server_url(url)
        # Extra HTTP headers on the websocket upgrade (e.g. what a proxy in front expects).
        self.headers = dict(headers or {})
        self.call_timeout = call_timeout
        self.key_wait = key_wait
        self.reconnect_delay = reconnect_delay
        self.reconnect_delay_max = reconnect_delay_max
        self.reconnect_timeout = reconnect_timeout
        self.rooms: dict[str, Room] = {}
        parts = urlsplit(self.url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._sio_path = (parts.path.strip("/") + "/socket.io").lstrip("/")
        self._sio: Any = socketio.AsyncClient(
            serializer="msgpack", reconnection=False, handle_sigint=False
        )
        self._calls: set[asyncio.Future[Any]] = set()
        self._online = asyncio.Event()
        self._closing = False
        self._reconnecting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._therapist: tuple[bytes, bytes] | None = None
        self._waiting: dict[str, Waiting] = {}
        self._sio.on("disconnect", self._on_disconnect)
        for push in Push:
            self._sio.on(str(push), self._push_handler(str(push)))

    # lifecycle

    async def __aenter__(self) -> ChatClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._online.is_set()

    @property
    def _transport_up(self) -> bool:
        """The socket is connected (rooms may still be resuming: `connected` waits for them)."""
        return bool(self._sio.connected)

    async def connect(self) -> None:
        """Open the connection; ChatError("unreachable") when the server cannot be reached."""
        try:
            await self._sio.connect(
                self._origin,
                headers=self.headers,
                transports=["websocket"],
                socketio_path=self._sio_path,
                wait_timeout=self.call_timeout,
            )
        except (socketio.exceptions.ConnectionError, ValueError, OSError) as exc:
            await self._close_http()
            raise ChatError("unreachable", f"Cannot connect to {self.url}: {exc}") from None
        self._online.set()

    async def _close_http(self) -> None:
        """Close engine.io's HTTP session (it outlives a failed connect otherwise)."""
        http = getattr(self._sio.eio, "http", None)
        if http is not None and not http.closed:
            await http.close()

    async def close(self, *, leave: bool = True) -> None:
        """Leave every room (unless `leave=False`: seats then lapse after the resume grace) and
        disconnect."""
        if leave and self._online.is_set():
            for room in list(self.rooms.values()):
                await _within(room.leave(), CLOSE_TIMEOUT_S)
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        for room in list(self.rooms.values()):
            room._close()
        self.rooms.clear()
        self._online.clear()
        self._fail_calls()
        # python-socketio's disconnect waits for its read loop to end, which a connection the
        # server closes at the same moment can hold up for good: bound it, then abort.
        if not await _within(self._sio.disconnect(), CLOSE_TIMEOUT_S):
            await _within(self._sio.eio.disconnect(abort=True), CLOSE_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await self._close_http()
        for task in list(self._tasks):
            task.cancel()

    # requests

    async def call(self, event: str, data: dict[str, Any], wait: float | None = None) -> Any:
        """Send one event and return its ack `{ok, ...}`; ConnectionLost if the connection drops."""
        if self._closing or not self._sio.connected:
            raise ConnectionLost()
        return await self._raw_call(event, data, wait)

    async def _raw_call(self, event: str, data: dict[str, Any], wait: float | None) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()

        def done(*args: Any) -> None:
            if not fut.done():
                fut.set_result(args[0] if args else None)

        self._calls.add(fut)
        try:
            try:
                await self._sio.emit(event, data, callback=done)
            except socketio.exceptions.SocketIOError:
                raise ConnectionLost() from None
            try:
                return await asyncio.wait_for(
                    asyncio.shield(fut), wait if wait is not None else self.call_timeout
                )
            except TimeoutError:
                raise ChatError("timeout", f"No answer from the server to {event}.") from None
        finally:
            self._calls.discard(fut)

    async def request(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """`call`, raising ChatError on a refusal; returns the ack."""
        ack = await self.call(event, data)
        return _checked(ack)

    async def create_room(
        self,
        listed: bool = False,
        topic: str | None = None,
        title: str | None = None,
        capacity: int | None = None,
        *,
        host_seat: bool = True,
    ) -> CreatedRoom:
        """Create a peer-support room. Private rooms get a fresh link secret (the server only sees
        the derived id and join key). With `host_seat`, the creator moderates: `host_link` carries
        the seed of the identity that takes the room's host seat. (Sessions: `create_session`.)"""
        payload: dict[str, Any] = {"kind": "peer", "listed": listed}
        if topic is not None:
            payload["topic"] = topic
        if capacity is not None:
            payload["capacity"] = capacity
        host_seed = secrets.token_bytes(64) if host_seat else None
        if host_seed is not None:
            host = e2ee.Identity.from_seeds(host_seed[:32], host_seed[32:])
            payload["host_id"] = b64id(host.member_id)
        secret: e2ee.RoomSecret | None = None
        if not listed:
            secret = e2ee.new_room_secret()
            payload["room_id"] = b64id(secret.room_id)
            payload["join_key"] = secret.join_public
            # Members take the host seat from this, signed with the link key, not from the server.
            payload["charter"] = make_charter(
                secret, host.member_id if host_seed is not None else None, lobby=False
            )
            if title is not None:
                payload["title"] = e2ee.seal_meta(secret.meta_key, secret.room_id, title)
        elif title is not None:
            raise ValueError("a listed room has no secret to encrypt a title with; use topic")
        ack = await self.request("room.create", payload)
        room = ack["room"]
        room_id = str(room["room_id"])
        if secret is not None:
            link = private_link(self.url, secret)
            host_link = private_link(self.url, secret, host_seed) if host_seed else None
        else:
            link = listed_link(self.url, room_id)
            host_link = listed_link(self.url, room_id, host_seed) if host_seed else None
        return CreatedRoom(room_id, link, host_link, room.get("expires_at"))

    async def sign_in(self, token: str) -> dict[str, Any]:
        """Sign this connection in as a verified therapist (`cst1.<cert>.<key>` from the operator).

        The token's key never leaves this process: the server sees the certificate and a
        signature over its nonce."""
        cert, seed = credentials.split_token(token)
        nonce = (await self.request("therapist.challenge", {}))["nonce"]
        ack = await self.request(
            "therapist.signin", {"cert": cert, "sig": credentials.sign_in(seed, nonce)}
        )
        self._therapist = (cert, seed)
        return dict(ack["therapist"])

    async def create_session(
        self,
        *,
        listed: bool = False,
        topic: str | None = None,
        title: str | None = None,
        capacity: int | None = None,
        starts_at: float | None = None,
        duration_s: float | None = None,
        lobby: bool = True,
        qa: bool = False,
        rules: str | None = None,
    ) -> CreatedRoom:
        """Create a verified session (after `sign_in`): a badge binds the credential to the room
        and the host seat; `host_link` holds the host identity (keep it to yourself)."""
        if self._therapist is None:
            raise ChatError("not_signed_in", "Call sign_in first.")
        cert, seed = self._therapist
        host_seed = secrets.token_bytes(64)
        host = e2ee.Identity.from_seeds(host_seed[:32], host_seed[32:])
        payload: dict[str, Any] = {"listed": listed, "lobby": lobby, "qa": qa}
        secret: e2ee.RoomSecret | None = None
        if listed:
            room_key = secrets.token_bytes(16)
            if topic is not None:
                payload["topic"] = topic
        else:
            secret = e2ee.new_room_secret()
            room_key = secret.room_id
            payload["join_key"] = secret.join_public
            payload["charter"] = make_charter(secret, host.member_id, lobby=lobby)
            if title is not None:
                payload["title"] = e2ee.seal_meta(secret.meta_key, secret.room_id, title)
        if rules is not None:
            payload["rules"] = (
                e2ee.seal_meta(secret.meta_key, secret.room_id, rules)
                if secret is not None
                else rules.encode("utf-8")
            )
        for name, value in (
            ("capacity", capacity),
            ("starts_at", starts_at),
            ("duration_s", duration_s),
        ):
            if value is not None:
                payload[name] = value
        room_id = b64id(room_key)
        payload["room_id"] = room_id
        payload["host_id"] = b64id(host.member_id)
        payload["badge"] = credentials.make_badge(cert, seed, room_key, host.member_id)
        ack = await self.request("session.create", payload)
        if secret is not None:
            link, host_link = (
                private_link(self.url, secret),
                private_link(self.url, secret, host_seed),
            )
        else:
            link = listed_link(self.url, room_id)
            host_link = listed_link(self.url, room_id, host_seed)
        return CreatedRoom(room_id, link, host_link, ack["room"].get("expires_at"))

    async def knock(
        self, link: RoomLink | str, nickname: str | None = None, *, accept_rules: bool = False
    ) -> Waiting:
        """Wait in a session's lobby; `await waiting.admitted()`, then `await waiting.enter()`."""
        if isinstance(link, str):
            link = parse_link(link)
        identity = e2ee.Identity.generate()
        card = identity.card(unb64id(link.room_id), int(time.time() * 1000))
        payload: dict[str, Any] = {
            "room_id": link.room_id,
            "card": card,
            "accept_rules": accept_rules,
        }
        if nickname:
            payload["nickname"] = nickname
        payload.update(await self.seat_proofs(link, identity))
        waiting = Waiting(self, link, identity, nickname, card)
        self._waiting[link.room_id] = waiting
        try:
            ack = await self.request("lobby.knock", payload)
        except BaseException:
            self._waiting.pop(link.room_id, None)
            raise
        try:
            authority(link, ack["lobby"])
        except ChatError:
            self._waiting.pop(link.room_id, None)
            raise
        waiting.info = dict(ack["lobby"])
        waiting.pseudonym = str(ack["pseudonym"])
        return waiting

    async def seat_proofs(self, link: RoomLink, identity: e2ee.Identity) -> dict[str, bytes]:
        """Answer a fresh room challenge: the seat proof (the card's key) and, for a private
        room, the link proof over the same nonce. One challenge per join, knock or resume."""
        nonce = (await self.request("room.challenge", {"room_id": link.room_id}))["nonce"]
        proofs = {"seat_proof": sign_seat(identity, unb64id(link.room_id), nonce)}
        if link.secret is not None:
            proofs["proof"] = link.secret.sign_join(nonce, identity.member_id)
        return proofs

    async def list_rooms(self, topic: str | None = None) -> list[dict[str, Any]]:
        """The public directory: maps with room_id, topic, kind, members, created_at."""
        ack = await self.request("room.list", {"topic": topic} if topic else {})
        return list(ack["rooms"])

    async def join(
        self, link: RoomLink | str, nickname: str | None = None, *, accept_rules: bool = False
    ) -> Room:
        """Join a room by link (a host link takes the host seat).

        A room with ground rules refuses with `rules_not_accepted`, its `details["rules"]` holding
        them (`rules_text` reads them): show them, and join again with `accept_rules=True`."""
        if isinstance(link, str):
            link = parse_link(link)
        if link.room_id in self.rooms:
            raise ChatError("already_member", "This client is already in the room.")
        room = Room(self, link, nickname)
        room.accept_rules = accept_rules
        self.rooms[link.room_id] = room
        try:
            await room._join()
        except BaseException:
            self.rooms.pop(link.room_id, None)
            raise
        return room

    # connection events

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _fail_calls(self) -> None:
        for fut in list(self._calls):
            if not fut.done():
                fut.set_exception(ConnectionLost())
                fut.exception()  # mark retrieved: the caller may be gone
        self._calls.clear()

    async def _on_disconnect(self, reason: Any = None) -> None:
        self._online.clear()
        self._fail_calls()
        for room in self.rooms.values():
            room._offline()
        if self._closing:
            return
        log.info("connection lost; reconnecting", extra={"reason": str(reason)})
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout
        delay = self.reconnect_delay
        while not self._closing and loop.time() < deadline:
            await asyncio.sleep(delay * (0.75 + random.random() / 2))  # noqa: S311 - jitter
            delay = min(delay * 2, self.reconnect_delay_max)
            if self._sio.connected or self._sio.eio.state != "disconnected":
                continue
            try:
                await self._sio.connect(
                    self._origin,
                    headers=self.headers,
                    transports=["websocket"],
                    socketio_path=self._sio_path,
                    wait_timeout=self.call_timeout,
                )
            except (socketio.exceptions.ConnectionError, ValueError, OSError):
                continue
            try:
                for room in list(self.rooms.values()):
                    await room._resume()
            except ConnectionLost:
                continue
            except Exception as exc:  # e.g. no answer: start over on a fresh connection
                log.warning("resume failed", extra={"error": type(exc).__name__})
                await self._force_reconnect()
                continue
            if self._sio.connected:
                self._online.set()
                log.info("reconnected")
                return
        log.warning("giving up reconnecting")
        with contextlib.suppress(Exception):
            await self._close_http()
        for room in list(self.rooms.values()):
            room._fail("connection_lost")

    async def _force_reconnect(self) -> None:
        """Drop the transport so the usual reconnect-and-resume runs."""
        if self._sio.connected and not self._closing:
            await self._sio.eio.disconnect(abort=True)

    def _push_handler(self, name: str) -> Callable[[Any], None]:
        def handle(data: Any = None) -> None:
            if not isinstance(data, dict):
                return
            waiting = self._waiting.get(str(data.get("room_id")))
            if waiting is not None and name in (Push.LOBBY_ADMITTED, Push.LOBBY_DECLINED):
                waiting._decided(name == Push.LOBBY_ADMITTED, str(data.get("reason", "")))
                return
            room = self.rooms.get(str(data.get("room_id")))
            if room is None:
                return
            try:
                room._on_push(name, data)
            except Exception as exc:  # a bad push must never stop the receive loop
                log.error("push not applied", extra={"event": name, "error": type(exc).__name__})

        return handle
