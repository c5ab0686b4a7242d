"""The asyncio Python client: one Socket.IO connection, any number of joined rooms.

```python
async with ChatClient("http://127.0.0.1:8080") as client:
    created = await client.create_room()            # a private peer room
    room = await client.join(created.link, nickname="River")
    await room.send("hello")
    async for event in room.events():               # Message | MemberJoined | MemberLeft | ...
        ...
```

The server relays ciphertext only. Each room has its own identity and `RoomCrypto`; the client
applies the room's ordered pushes strictly in `seq` order, distributes sender keys before the
envelopes they open, and resumes its seats after a dropped connection (rejoining with a fresh
identity when the seat is gone). Plaintext, keys and tokens are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import random
import secrets
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

import socketio

from chatserver import credentials, e2ee
from chatserver.e2ee.charter import make_charter
from chatserver.e2ee.constants import ds
from chatserver.e2ee.primitives import hpke_open, hpke_seal, u32
from chatserver.e2ee.question import open_question, sign_question
from chatserver.e2ee.roles import role_signer, sign_role, verify_role
from chatserver.e2ee.seat import sign_seat
from chatserver.links import RoomLink, listed_link, parse_link, private_link, server_url
from chatserver.pins import Pinned, body_fields, check_links, new_pin_id, read_pin
from chatserver.protocol import ErrorCode, Push
from chatserver.protocol.ids import b64id, unb64id
from chatserver.trust import card_derives, room_authority, signed_sender

log = logging.getLogger("chatserver.client")

U32_MAX = 2**32 - 1  # epochs are u32 on the wire and in every signature
MAX_WAITING_EVENTS = 256  # ordered events held back (out of order, or behind a missing key)
CATCHUP_RATE_WAITS = 5  # room.catchup pages asked again after `rate_limited` before giving up
MAX_STASHED_KEYS = 256  # sealed keys waiting for their sender's join or the next epoch
MAX_HELD_PER_SENDER = 64  # one sender's messages set aside until its sender key arrives
REPIN_DELAY_S = 1.0  # re-send the pin once after a burst of joins, not once per join
MAX_OWN_SENT = 1024  # own plaintexts kept until their envelope comes back in order
MAX_QUEUED_EVENTS = 10_000  # events waiting for the application to read them
CLOSE_TIMEOUT_S = 2.0  # the longest `close` waits for the library to disconnect


class ChatError(Exception):
    """A refusal from the server (its error `code` and safe `message`) or a client-side failure.

    `details`: what else the refusal carries, e.g. `rules` with `rules_not_accepted` (the room's
    ground rules, to show before accepting them; `rules_text` reads them)."""

    def __init__(
        self,
        code: str,
        message: str,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.details = details or {}


class ConnectionLost(ChatError):
    """The connection dropped while a request was in flight (the client resumes by itself)."""

    def __init__(self) -> None:
        super().__init__("connection_lost", "The connection to the server was lost.")


# --- what a room shows a chat UI ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberInfo:
    pseudonym: str
    role: str  # the trusted role: "moderator" or "host" only with a host's signed statement
    card: bytes = field(repr=False)
    claimed: str = ""  # the role the server's view names
    role_proof: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Message:
    """A decrypted message, yielded once, in `seq` order. `own` marks our own messages."""

    seq: int
    ts: int  # server time, ms since the epoch
    sender_id: str
    pseudonym: str
    text: str = field(repr=False)
    body: dict[str, Any] = field(repr=False)  # the whole type-1 JSON body ({"text": ..., ...})
    own: bool = False
    evidence: Evidence | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class MemberJoined:
    seq: int
    ts: int
    member_id: str
    pseudonym: str
    role: str


@dataclass(frozen=True, slots=True)
class MemberLeft:
    seq: int
    ts: int
    member_id: str
    pseudonym: str
    reason: str  # left | removed | expired | disconnected
    epoch: int


@dataclass(frozen=True, slots=True)
class MemberUpdated:
    """A member's pseudonym or role changed (`old_pseudonym` is what the UI showed before)."""

    seq: int
    ts: int
    member_id: str
    pseudonym: str
    old_pseudonym: str
    role: str


@dataclass(frozen=True, slots=True)
class RoomUpdated:
    seq: int
    ts: int
    state: str
    paused: bool
    slow_mode_s: float


@dataclass(frozen=True, slots=True)
class PinChanged:
    """The room's pin as we can now read it. `resent`: the same pin again, re-sent under the
    current keys for a later joiner (or found on joining), not a new pin."""

    seq: int
    sender_id: str
    pseudonym: str
    pinned: Pinned
    resent: bool


@dataclass(frozen=True, slots=True)
class PinRemoved:
    seq: int
    by: str


@dataclass(frozen=True, slots=True)
class RoomEnded:
    """The room is over (or we are out of it); the event stream ends after this."""

    seq: int
    ts: int
    reason: str


@dataclass(frozen=True, slots=True)
class Typing:
    member_id: str
    pseudonym: str
    on: bool


@dataclass(frozen=True, slots=True)
class DecryptFailed:
    """An envelope that could not be opened (`code` is an e2ee error code); it is skipped."""

    seq: int
    ts: int
    sender_id: str
    pseudonym: str
    code: str


@dataclass(frozen=True, slots=True)
class KeyRejected:
    """A sealed sender key refused; `code == "equivocation"` flags the sender (show it)."""

    sender_id: str
    pseudonym: str
    code: str


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The connection came back. `resumed`: same seat; otherwise we rejoined with a new identity.
    `gap`: ordered events were missed (messages sent meanwhile are lost to us)."""

    resumed: bool
    gap: bool
    member_id: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a member keeps of a received message so it can report it (franking)."""

    env: bytes
    ts: int
    stamp: bytes
    franking_key: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class MessageHidden:
    """A message (by envelope digest) was hidden pending review, or restored."""

    seq: int
    digest: bytes
    hidden: bool


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    seq: int
    qa: bool
    rules: bytes | None


@dataclass(frozen=True, slots=True)
class LobbyUpdate:
    """For hosts and moderators: someone waits, was admitted or declined, or left the lobby."""

    member_id: str
    pseudonym: str
    status: str
    card: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReportReceived:
    """For hosts and moderators: a verified report (the text is what the sender really sent)."""

    digest: bytes
    reason: str
    sender_id: str
    sender_pseudonym: str | None
    text: str | None
    reporters: int
    hidden: bool


@dataclass(frozen=True, slots=True)
class Question:
    """For hosts in Q&A mode: a question sealed to us."""

    sender_id: str
    pseudonym: str
    text: str
    consent: bool  # the asker agreed to be named with the answer


RoomEvent: TypeAlias = (
    Message
    | MemberJoined
    | MemberLeft
    | MemberUpdated
    | RoomUpdated
    | RoomEnded
    | Typing
    | DecryptFailed
    | KeyRejected
    | Reconnected
    | MessageHidden
    | SessionUpdated
    | LobbyUpdate
    | ReportReceived
    | Question
    | PinChanged
    | PinRemoved
)


@dataclass(frozen=True, slots=True)
class Sent:
    """The server's acceptance of one of our messages."""

    seq: int
    ts: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class CreatedRoom:
    """A new room: `link` for everyone; `host_link` (session rooms) only for the host."""

    room_id: str
    link: RoomLink
    host_link: RoomLink | None
    expires_at: float | None


class _Closed:
    """Sentinel that ends a room's event stream."""


_CLOSED = _Closed()


def _parses(env: Any) -> bool:
    """Whether `env` is an envelope at all (its header parses)."""
    if not isinstance(env, bytes):
        return False
    try:
        e2ee.parse_envelope(env)
    except e2ee.E2EEError:
        return False
    return True


async def _within(step: Awaitable[Any], seconds: float) -> bool:
    """Run `step` for at most `seconds`; False if it had not finished (it is then cancelled).
    `asyncio.wait`, not `wait_for`: it never waits on a step that swallows its cancellation."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        return False
    with contextlib.suppress(Exception):
        task.result()
    return True


@dataclass(slots=True)
class _Own:
    text: str
    body: dict[str, Any]
    seq: int | None = None
    ts: int = 0


# --- the connection --------------------------------------------------------------------------


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


_STAFF_PUSHES = {Push.LOBBY_WAITING, Push.REPORT, Push.QA_QUESTION}


def rules_text(link: RoomLink, rules: bytes) -> str | None:
    """The ground rules as text: opened with the link's meta key in private rooms, UTF-8 in
    listed ones; None when they cannot be read."""
    try:
        if link.secret is not None:
            return e2ee.open_meta(link.secret.meta_key, link.secret.room_id, rules)
        return rules.decode("utf-8")
    except (e2ee.E2EEError, UnicodeDecodeError):
        return None


def authority(link: RoomLink, view: dict[str, Any]) -> tuple[str | None, bool]:
    """`trust.room_authority`, refused as ChatError `bad_charter` (a private room whose host and
    lobby no link holder signed)."""
    try:
        return room_authority(link, view)
    except e2ee.E2EEError:
        raise ChatError("bad_charter", "This room's host could not be verified.") from None


def question_info(room_id: str, asker_id: str, host_id: str) -> bytes:
    """HPKE info for a Q&A question: DS("question") ‖ room_id ‖ asker_id ‖ host_id."""
    return ds("question") + unb64id(room_id) + unb64id(asker_id) + unb64id(host_id)


def _checked(ack: Any) -> dict[str, Any]:
    if not isinstance(ack, dict):
        raise ChatError("bad_ack", "The server sent an unexpected answer.")
    if not ack.get("ok"):
        error = ack.get("error") or {}
        details = {k: v for k, v in error.items() if k not in ("code", "message", "retry_after")}
        raise ChatError(
            str(error.get("code", "unknown")),
            str(error.get("message", "")),
            error.get("retry_after"),
            details,
        )
    return ack


def _digest(env: bytes) -> bytes:
    return hashlib.sha256(env).digest()


def _body(opened: e2ee.Opened) -> dict[str, Any]:
    if opened.text is None:
        return {}
    obj = json.loads(opened.body.decode("utf-8"))
    return obj if isinstance(obj, dict) else {}


class Waiting:
    """A place in a session's lobby: nothing of the room is received until a host admits us."""

    def __init__(
        self,
        client: ChatClient,
        link: RoomLink,
        identity: e2ee.Identity,
        nickname: str | None,
        card: bytes,
    ) -> None:
        self.client = client
        self.card = card
        self.link = link
        self.identity = identity
        self.nickname = nickname
        self.member_id = b64id(identity.member_id)
        self.pseudonym = ""
        self.info: dict[str, Any] = {}
        self.declined_reason: str | None = None
        self._decision: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def _decided(self, admitted: bool, reason: str) -> None:
        if not admitted:
            self.declined_reason = reason or "declined"
            self.client._waiting.pop(self.link.room_id, None)
        if not self._decision.done():
            self._decision.set_result(admitted)

    async def admitted(self) -> bool:
        """True once admitted; False when declined (or the session ended)."""
        return await asyncio.shield(self._decision)

    async def enter(self) -> Room:
        """Join the room with the admitted identity (after `admitted()` returned True)."""
        if self.link.room_id in self.client.rooms:
            raise ChatError("already_member", "This client is already in the room.")
        self.client._waiting.pop(self.link.room_id, None)
        room = Room(self.client, self.link, self.nickname, self.identity, self.card)
        self.client.rooms[self.link.room_id] = room
        try:
            await room._join()
        except BaseException:
            self.client.rooms.pop(self.link.room_id, None)
            raise
        return room


# --- one room --------------------------------------------------------------------------------


class Room:
    """One joined room: its identity and crypto state, membership, and the events for the UI.

    Read events with `async for ev in room.events()` (or `room.messages()` for messages only);
    a room has one reader.
    """

    def __init__(
        self,
        client: ChatClient,
        link: RoomLink,
        nickname: str | None,
        identity: e2ee.Identity | None = None,
        card: bytes | None = None,
    ) -> None:
        self.client = client
        self.link = link
        self.room_id = link.room_id
        self.nickname = nickname
        self.member_id = ""
        self.pseudonym = ""
        self.role = ""
        self.title: str | None = None
        self.kind = ""
        self.lobby = False
        self.qa = False
        self.host_id: str | None = None
        self.host_card: bytes | None = None
        self._charter: tuple[str | None, bool] | None = None  # the first verified host and lobby
        self.badge: bytes | None = None
        self.starts_at: float | None = None
        self.duration_s: float | None = None
        self.ends_at: float | None = None
        self.pinned: Pinned | None = None  # the room's pin, once we can read it
        self.accept_rules = False  # we read and accept the room's ground rules
        self._repin: asyncio.TimerHandle | None = None
        self._identity = identity
        self._lobby_card = card  # the card a host admitted: we must join with exactly it
        self.seq = 0  # last ordered event applied
        self.members: dict[str, MemberInfo] = {}
        self.closed = False
        self._token = b""
        self._crypto: e2ee.RoomCrypto | None = None
        self._generation = 0  # bumps when we rejoin with a new identity
        self._ready = False  # False while joining/resuming: pushes are stashed
        self._stash: list[tuple[str, dict[str, Any]]] = []
        self._waiting: dict[int, dict[str, Any]] = {}  # seq -> {"event": name, ...payload}
        # Messages whose sender key has not arrived yet, set aside per sender (in seq order) so
        # that one sender's missing or bogus chain never holds anyone else's messages back.
        self._held: dict[str, list[dict[str, Any]]] = {}
        self._held_until: dict[str, float] = {}  # sender -> when we stop waiting for its key
        self._held_timer: asyncio.TimerHandle | None = None
        self._gap_timer: asyncio.TimerHandle | None = None
        self._keys: deque[tuple[float, dict[str, Any]]] = deque()  # (deadline, key push)
        self._own: OrderedDict[bytes, _Own] = OrderedDict()
        self._outbox: list[tuple[bytes, bytes]] = []  # (recipient id, skd) not yet acked
        self._send_lock = asyncio.Lock()
        self._online = asyncio.Event()
        self._epoch_moved = asyncio.Event()
        self._queue: asyncio.Queue[RoomEvent | _Closed] = asyncio.Queue(MAX_QUEUED_EVENTS)
        self._fail_code: str | None = None
        # Pushes refused because the server's word contradicts what is signed (a relabelled
        # sender, a departure that does not move the epoch, an unsigned question...), by reason.
        self.refused: Counter[str] = Counter()
        # Member ids removed while we watched: never admitted again, whatever admission a server
        # hands back (a removed person must knock again, with a new identity).
        self._removed: set[str] = set()

    # public API

    @property
    def epoch(self) -> int:
        return self._crypto.epoch if self._crypto is not None else 0

    @property
    def flagged(self) -> frozenset[str]:
        """Members caught equivocating on their sender keys."""
        if self._crypto is None:
            return frozenset()
        return frozenset(b64id(m) for m in self._crypto.flagged)

    def safety_code(self) -> str:
        """This epoch's safety code: compare it out of band to detect ghost members or swapped keys."""
        assert self._crypto is not None
        return self._crypto.safety_code()

    async def send(self, text: str, *, pin: bool = False, **extra: Any) -> Sent:
        """Encrypt and send one message; returns once the server has sequenced it (`pin`: as the
        room's pin, hosts and moderators only; see `pin`).

        Sender keys go out first. Rate limits are waited out; a send interrupted by a dropped
        connection is retried with the same envelope after resume (never doubled). Raises
        ChatError on a refusal."""
        body = e2ee.encode_text(text, **extra)
        parsed = json.loads(body)
        async with self._send_lock:
            env, generation = self._seal(body, text, parsed)
            stale_retries = 0
            while True:
                self._check_open()
                await self._wait_online()
                own = self._own.get(_digest(env))
                if own is not None and own.seq is not None:
                    return Sent(own.seq, own.ts, duplicate=True)  # seen in order meanwhile
                if generation != self._generation or own is None:
                    # We rejoined with a new identity (or the record was evicted).
                    env, generation = self._seal(body, text, parsed)
                    continue
                try:
                    await self._flush_outbox()
                    payload: dict[str, Any] = {"room_id": self.room_id, "env": env}
                    if pin:
                        payload["pin"] = True
                    ack = await self.client.call("msg.send", payload)
                except ConnectionLost:
                    continue
                if isinstance(ack, dict) and ack.get("ok"):
                    seq, ts = int(ack["seq"]), int(ack["ts"])
                    own.seq, own.ts = seq, ts
                    return Sent(seq, ts, bool(ack.get("duplicate", False)))
                error = _error_of(ack)
                if error.code == ErrorCode.RATE_LIMITED:
                    await asyncio.sleep(error.retry_after or 1.0)
                    continue
                if error.code in ("stale_epoch", ErrorCode.NOT_IN_ROOM) and stale_retries < 5:
                    # The epoch moved (someone left) or our seat is being resumed.
                    if own.seq is not None:  # it was sequenced before the change
                        return Sent(own.seq, own.ts, duplicate=True)
                    stale_retries += 1
                    await self._wait_epoch_change(env)
                    self._own.pop(_digest(env), None)
                    env, generation = self._seal(body, text, parsed)
                    continue
                self._own.pop(_digest(env), None)
                raise error

    async def rename(self, nickname: str) -> None:
        ack = await self.client.request(
            "room.rename", {"room_id": self.room_id, "nickname": nickname}
        )
        self.nickname = nickname
        self._apply_member(ack["you"])

    async def typing(self, on: bool) -> None:
        await self.client.request("typing", {"room_id": self.room_id, "on": on})

    async def leave(self) -> None:
        """Leave the room (the others re-key); the event stream ends."""
        if self.closed:
            return
        try:
            await self.client.request("room.leave", {"room_id": self.room_id})
        finally:
            self._close()

    # host and moderator controls (each refused by the server without the role)

    async def _control(self, event: str, **fields: Any) -> dict[str, Any]:
        return await self.client.request(event, {"room_id": self.room_id, **fields})

    async def mute(self, member_id: str, duration_s: float | None = None) -> None:
        fields: dict[str, Any] = {"member_id": member_id}
        if duration_s is not None:
            fields["duration_s"] = duration_s
        await self._control("member.mute", **fields)

    async def unmute(self, member_id: str) -> None:
        await self._control("member.unmute", member_id=member_id)

    async def remove(self, member_id: str, *, ban: bool = False) -> None:
        await self._control("member.remove", member_id=member_id, ban=ban)

    async def set_role(self, member_id: str, role: Literal["member", "moderator", "host"]) -> None:
        """Change a member's role (hosts only), with our signed statement that members check."""
        assert self._crypto is not None
        proof = sign_role(
            self._crypto._identity,
            unb64id(self.room_id),
            unb64id(member_id),
            role,
            int(time.time() * 1000),
        )
        await self._control("member.role", member_id=member_id, role=role, role_proof=proof)

    async def settings(self, **fields: Any) -> dict[str, Any]:
        """Any of locked, paused, slow_mode_s, qa, rules (bytes; b"" removes them)."""
        ack = await self._control("room.settings", **fields)
        return dict(ack["room"])

    async def pin(self, text: str, links: list[tuple[str, str]] | None = None) -> Sent:
        """Pin a message, optionally with a resource list of (label, https URL) pairs.

        Every member sees it, later joiners too: our client re-sends it under the current keys
        whenever someone joins (the same pin, not a new one)."""
        fields = body_fields(new_pin_id(), check_links(links or []))
        return await self.send(text, pin=True, **fields)

    async def unpin(self) -> None:
        await self._control("pin.clear")

    async def end(self) -> None:
        """End the session for everyone (the room and its buffers are deleted on every node)."""
        await self._control("room.end")

    async def lobby_waiting(self) -> list[dict[str, Any]]:
        ack = await self._control("lobby.list")
        return list(ack["waiting"])

    async def admit(self, member_id: str, card: bytes | None = None) -> None:
        """Admit a waiter: sign its card with our per-room key (members check the signature)."""
        if card is None:
            found = [w for w in await self.lobby_waiting() if w["member_id"] == member_id]
            if not found:
                raise ChatError("not_waiting", "Nobody with this id is waiting.")
            card = bytes(found[0]["card"])
        assert self._crypto is not None
        await self._control(
            "lobby.admit", member_id=member_id, admission=self._sign_admission(card)
        )

    def _sign_admission(self, card: bytes) -> bytes:
        assert self._crypto is not None
        epoch = self._crypto.epoch
        message = credentials.admission_message(unb64id(self.room_id), epoch, card)
        return u32(epoch) + self._crypto._identity.sign(message)

    async def admit_all(self) -> int:
        waiting = [w for w in await self.lobby_waiting() if w["status"] == "waiting"]
        for w in waiting:
            await self.admit(str(w["member_id"]), bytes(w["card"]))
        return len(waiting)

    async def decline(self, member_id: str) -> None:
        await self._control("lobby.decline", member_id=member_id)

    async def report(self, message: Message, reason: str) -> dict[str, Any]:
        """Report a received message; the server verifies it really was sent before routing."""
        ev = message.evidence
        if ev is None:
            raise ChatError("no_evidence", "Only received messages can be reported.")
        return await self._control(
            "report.send",
            env=ev.env,
            ts=ev.ts,
            stamp=ev.stamp,
            franking_key=ev.franking_key,
            body=ev.body,
            reason=reason,
        )

    async def review(self, digest: bytes, *, hide: bool) -> None:
        await self._control("report.review", digest=digest, hide=hide)

    async def ask(self, text: str, *, consent: bool = False) -> int:
        """Q&A: seal a question to each host (nobody else can open it); returns how many."""
        body = e2ee.encode_text(text, consent=consent)
        hosts = [
            (mid, m)
            for mid, m in self.members.items()
            if m.role == "host" and mid != self.member_id
        ]
        for host_id, info in hosts:
            x_public = e2ee.parse_card(info.card).x_public
            assert self._crypto is not None
            plain = sign_question(
                self._crypto._identity, unb64id(self.room_id), unb64id(host_id), body
            )
            sealed = hpke_seal(
                x_public, question_info(self.room_id, self.member_id, host_id), plain
            )
            await self._control("qa.ask", to=host_id, sealed=sealed)
        return len(hosts)

    async def answer(self, question: Question, text: str) -> Sent:
        """Answer publicly, quoting the question (named only if the asker agreed)."""
        quote: dict[str, Any] = {"text": question.text}
        if question.consent:
            quote["asker"] = question.pseudonym
        return await self.send(text, quote=quote)

    async def events(self) -> AsyncIterator[RoomEvent]:
        """Every event for the UI, in order; ends after RoomEnded or leave()."""
        while True:
            ev = await self._queue.get()
            if isinstance(ev, _Closed):
                self._queue.put_nowait(ev)  # any later reader ends too
                return
            yield ev

    async def messages(self) -> AsyncIterator[Message]:
        """Decrypted messages (ours included, `own=True`) in seq order, never twice."""
        async for ev in self.events():
            if isinstance(ev, Message):
                yield ev

    # joining and resuming

    async def _join(self) -> None:
        identity = self.link.host_identity or self._identity or e2ee.Identity.generate()
        crypto = e2ee.RoomCrypto(identity, unb64id(self.room_id))
        if self._identity is not None and self._lobby_card is not None:
            crypto._card = self._lobby_card
        if self._lobby_card is None:
            # A rejoin starts fresh; in a lobby room it keeps the card a host admitted, so the
            # server lets us back in without queueing again (unless we were removed).
            self._identity = None
        payload: dict[str, Any] = {"room_id": self.room_id, "card": crypto.card}
        if self.nickname:
            payload["nickname"] = self.nickname
        if self.accept_rules:
            payload["accept_rules"] = True
        payload.update(await self.client.seat_proofs(self.link, identity))
        if self.link.secret is not None:
            # What the other members check before they share keys with us (a ghost has none).
            payload["member_proof"] = self.link.secret.sign_member(identity.member_id)
        self._ready = False
        ack = await self.client.request("room.join", payload)
        try:
            authority(self.link, ack["room"])
        except ChatError:
            # A private room whose host and lobby no link holder signed: leave the seat again.
            with contextlib.suppress(ChatError):
                await self.client.request("room.leave", {"room_id": self.room_id})
            raise
        self._generation += 1
        self._crypto = crypto
        self._outbox.clear()
        self._waiting.clear()
        self._held.clear()
        self._held_until.clear()
        self._keys.clear()
        self.member_id = b64id(identity.member_id)
        self._token = bytes(ack["you"]["token"])
        self.members = {}
        self._reset_members(ack)
        self.seq = int(ack["seq"])
        self._ready = True
        self._online.set()
        self._replay_stash()

    async def _resume(self) -> None:
        """After a reconnect: resume the seat (or rejoin fresh when it is gone)."""
        if self.closed or self._crypto is None:
            return
        self._ready = False
        challenge = await self.client._raw_call("room.challenge", {"room_id": self.room_id}, None)
        ack = challenge
        if isinstance(challenge, dict) and challenge.get("ok"):
            proof = sign_seat(self._crypto._identity, unb64id(self.room_id), challenge["nonce"])
            ack = await self.client._raw_call(
                "room.resume",
                {
                    "room_id": self.room_id,
                    "member_id": self.member_id,
                    "token": self._token,
                    "seat_proof": proof,
                    "epoch": self._crypto.epoch,
                    "last_seq": self.seq,
                },
                None,
            )
        if isinstance(ack, dict) and ack.get("ok"):
            try:
                self._take_charter(ack["room"])
            except ChatError as exc:
                self._fail(exc.code)
                return
            gap = bool(ack.get("gap"))
            for key in ack.get("keys") or []:
                self._on_key(key)
            if gap:
                self._resync(ack)
            else:
                gap = await self._catch_up(ack)
            self._ready = True
            self._replay_stash()
            self._emit(Reconnected(resumed=True, gap=gap, member_id=self.member_id))
            self._online.set()
            if self._outbox:
                self.client._spawn(self._flush_soon())
            return
        error = _error_of(ack)
        if error.code != ErrorCode.RESUME_FAILED:
            log.info("resume refused", extra={"code": error.code})
        # The seat is gone (grace passed, room ended, or a wrong token): join again, fresh.
        self._stash.clear()
        try:
            await self._join()
        except ConnectionLost:
            raise
        except ChatError as exc:
            self._fail(exc.code)
            return
        self._emit(Reconnected(resumed=False, gap=True, member_id=self.member_id))

    def _resync(self, ack: dict[str, Any]) -> None:
        """The missed events are lost: go on from the resume ack's snapshot."""
        self._waiting.clear()
        self._reset_members(ack)
        self.seq = int(ack["seq"])

    async def _catch_up(self, ack: dict[str, Any]) -> bool:
        """Apply the resume ack's page of missed events, then the next pages (room.catchup) while
        it says `more`; True when the buffer lost some meanwhile (handled as a gap on resume).

        Only up to the ack's `seq`: the seat was attached before that snapshot, so what follows
        arrives as pushes, stashed until we are ready (bounded by MAX_QUEUED_EVENTS, not by
        MAX_WAITING_EVENTS). The pages are applied in order, so they never pile up as waiting."""
        head = int(ack["seq"])
        cursor = self._take_page(ack.get("events"), self.seq)
        more = bool(ack.get("more"))
        while more and cursor < head:
            page = await self._catchup_page(cursor)
            if page.get("gap"):
                self._resync(ack)
                return True
            after, cursor = cursor, self._take_page(page.get("events"), cursor)
            more = bool(page.get("more")) and cursor > after  # an empty page ends it
        return False

    def _take_page(self, events: Any, cursor: int) -> int:
        """Feed a page to the ordered stream; returns the highest seq received (or `cursor`)."""
        for event in events or []:
            self._receive_ordered(str(event.get("event")), event)
            seq = event.get("seq")
            if isinstance(seq, int) and seq > cursor:
                cursor = seq
        return cursor

    async def _catchup_page(self, after_seq: int) -> dict[str, Any]:
        """One room.catchup; a rate-limited one waits as told and asks again (a few times)."""
        payload = {"room_id": self.room_id, "after_seq": after_seq}
        for _ in range(CATCHUP_RATE_WAITS):
            page = await self.client._raw_call("room.catchup", payload, None)
            error = page.get("error") if isinstance(page, dict) else None
            if not isinstance(error, dict) or error.get("code") != ErrorCode.RATE_LIMITED:
                break
            await asyncio.sleep(min(float(error.get("retry_after") or 1.0), 5.0))
        # A refusal raises: the reconnect loop starts over and resumes from `self.seq`.
        return _checked(page)

    def _offline(self) -> None:
        self._online.clear()
        self._ready = False

    def _reset_members(self, ack: dict[str, Any]) -> None:
        """Take membership, roles, epoch and title from a join or resume ack."""
        crypto = self._crypto
        assert crypto is not None
        room = ack["room"]
        self.kind = str(room.get("kind", ""))
        self._take_charter(room)
        self.qa = bool(room.get("qa"))
        self.badge = room.get("badge")
        self.starts_at = room.get("starts_at")
        self.duration_s = room.get("duration_s")
        self.ends_at = room.get("ends_at")
        for m in ack["members"]:
            host_id = self.host_id
            if (
                host_id is not None
                and m["member_id"] == host_id
                and card_derives(m.get("card"), host_id)
            ):
                self.host_card = bytes(m["card"])
        title = room.get("title")
        if title and self.link.secret is not None:
            try:
                self.title = e2ee.open_meta(
                    self.link.secret.meta_key, self.link.secret.room_id, title
                )
            except e2ee.E2EEError:
                self.title = None
        current = {str(m["member_id"]): m for m in ack["members"]}
        for member_id in list(self.members):
            if member_id not in current:
                self.members.pop(member_id)
                crypto.remove_member(unb64id(member_id))
        epoch = int(room["epoch"])
        if epoch > crypto.epoch:
            crypto.set_epoch(epoch)
            self._epoch_moved.set()
        self._admit_snapshot(list(ack["members"]))
        self._apply_member(ack["you"], count=False)
        for member_id in self.members:
            self._count_unproven(member_id)
        self._retry_keys()
        self._share_keys()
        self._take_pin(room.get("pinned"))

    def _take_charter(self, view: dict[str, Any]) -> None:
        """Host seat and lobby flag from the room view (the charter, in a private room)."""
        host_id, lobby = authority(self.link, view)
        if self._charter is not None and self._charter != (host_id, lobby):
            # A room's charter never changes: a different one later is a forgery.
            raise ChatError("bad_charter", "This room's host changed.")
        self._charter = (host_id, lobby)
        self.host_id, self.lobby = host_id, lobby

    def _take_pin(self, push: Any) -> None:
        """The pin in a join or resume ack: readable only if we still hold its chain (a resume);
        a later joiner reads it when the pinner re-sends it under the current keys."""
        if not isinstance(push, dict):
            self.pinned = None
            return
        crypto = self._crypto
        env, seq = push.get("env"), int(push.get("seq") or 0)
        sender = signed_sender(env, push.get("from"))
        if crypto is None or sender is None or not isinstance(env, bytes):
            return
        if self.pinned is not None and self.pinned.seq >= seq:
            return
        try:
            opened = crypto.decrypt(env)
            body = _body(opened)
        except (e2ee.E2EEError, ValueError):
            return
        pinned = read_pin(body, opened.text or "", sender, seq)
        if pinned is not None:
            self.pinned = pinned
            self._emit(PinChanged(seq, sender, self._name(sender), pinned, True))

    def _schedule_repin(self) -> None:
        """Someone joined: if it is our duty, re-send the pin under the current keys, once, soon.

        The duty is the pinner's while they are here, else the first host or moderator's."""
        pinned = self.pinned
        if pinned is None or self.closed:
            return
        if pinned.sender_id in self.members:
            duty = pinned.sender_id == self.member_id
        else:
            staff = [mid for mid, m in self.members.items() if m.role in ("host", "moderator")]
            duty = bool(staff) and staff[0] == self.member_id
        if not duty:
            return
        if self._repin is not None:
            self._repin.cancel()  # one re-send after a burst of joins (admit all)
        loop = asyncio.get_running_loop()
        self._repin = loop.call_later(REPIN_DELAY_S, lambda: self.client._spawn(self._resend_pin()))

    async def _resend_pin(self) -> None:
        self._repin = None
        pinned = self.pinned
        if pinned is None or self.closed:
            return
        try:
            await self.send(pinned.text, pin=True, **body_fields(pinned.pin_id, pinned.links))
        except ChatError as exc:
            log.info("pin not re-sent", extra={"code": exc.code})

    # ordered pushes

    def _on_push(self, name: str, data: dict[str, Any]) -> None:
        if self.closed:
            return
        if not self._ready:
            if len(self._stash) < MAX_QUEUED_EVENTS:
                self._stash.append((name, data))
            return
        if name == Push.KEY:
            self._on_key(data)
            if self._held:
                self._release_held(asyncio.get_running_loop().time())
            self._drain()
        elif name in _STAFF_PUSHES:
            self._on_staff_push(name, data)
        elif name == Push.TYPING:
            member_id = str(data.get("member_id"))
            if member_id != self.member_id:
                self._emit(Typing(member_id, self._name(member_id), bool(data.get("on"))))
        else:
            self._receive_ordered(name, data)

    def _on_staff_push(self, name: str, data: dict[str, Any]) -> None:
        if name == Push.LOBBY_WAITING:
            w = data.get("waiter") or {}
            self._emit(
                LobbyUpdate(
                    str(w.get("member_id")),
                    str(w.get("pseudonym")),
                    str(w.get("status")),
                    bytes(w.get("card") or b""),
                )
            )
        elif name == Push.REPORT:
            r = data.get("report") or {}
            body = bytes(r.get("body") or b"")
            text: str | None = None
            if len(body) > 9 and body[0] == 1:  # franked type-1 body: u8 type, u64 ts, JSON
                with contextlib.suppress(e2ee.E2EEError):
                    text = e2ee.decode_text(body[9:])
            self._emit(
                ReportReceived(
                    bytes(r.get("digest") or b""),
                    str(r.get("reason")),
                    str(r.get("sender_id")),
                    r.get("sender_pseudonym"),
                    text,
                    int(r.get("reporters") or 0),
                    bool(r.get("hidden")),
                )
            )
        elif name == Push.QA_QUESTION and self._crypto is not None:
            sender = str(data.get("from"))
            asker = self.members.get(sender)
            if asker is None:
                self._refuse("unknown_asker")
                return
            try:
                plain = hpke_open(
                    self._crypto._identity.x_private,
                    question_info(self.room_id, sender, self.member_id),
                    bytes(data.get("sealed") or b""),
                )
                body = open_question(
                    plain,
                    unb64id(self.room_id),
                    unb64id(sender),
                    e2ee.parse_card(asker.card).ed_public,
                    unb64id(self.member_id),
                )
                text = e2ee.decode_text(body)
                consent = json.loads(body).get("consent") is True
            except (e2ee.E2EEError, ValueError, TypeError):
                self._refuse("unsigned_question")
                return
            self._emit(Question(sender, self._name(sender), text, consent))

    def _replay_stash(self) -> None:
        stash, self._stash = self._stash, []
        for name, data in stash:
            self._on_push(name, data)
        self._drain()

    def _receive_ordered(self, name: str, data: dict[str, Any]) -> None:
        seq = data.get("seq")
        if not isinstance(seq, int) or seq <= self.seq:
            return  # already applied (or not an ordered event)
        self._waiting[seq] = {**data, "event": name}
        if len(self._waiting) > MAX_WAITING_EVENTS:
            log.warning("too many events held back; skipping ahead")
            self.seq = min(self._waiting) - 1
        self._drain()

    def _drain(self) -> None:
        """Apply waiting ordered events in seq order; stop at a hole or at a missing key."""
        loop = asyncio.get_running_loop()
        while not self.closed and self.seq + 1 in self._waiting:
            event = self._waiting[self.seq + 1]
            try:
                applied = self._apply(event, loop.time())
            except Exception:
                # A malformed push (a missing field, a wrong type) is skipped, never retried:
                # whatever a server sends, the ordered stream moves on.
                self._refuse("malformed")
                applied = True
            if not applied:
                return  # an epoch change waits for held messages; their timer drains again
            self._waiting.pop(self.seq + 1)
            self.seq += 1
        if self._waiting and self._gap_timer is None and self.seq + 1 not in self._waiting:
            # A hole on a live connection: pushes were lost. Resume if it does not fill soon.
            self._gap_timer = loop.call_later(self.client.key_wait, self._gap_check)

    def _gap_check(self) -> None:
        self._gap_timer = None
        if self._ready and self._waiting and self.seq + 1 not in self._waiting:
            log.warning("ordered events missing; reconnecting to resume")
            self.client._spawn(self.client._force_reconnect())

    def _hold(self, sender: str, event: dict[str, Any], now: float) -> bool:
        """Set a message aside until its sender's key arrives (or the wait ends)."""
        queue = self._held.setdefault(sender, [])
        if len(queue) >= MAX_HELD_PER_SENDER:
            return False
        if not queue:
            self._held_until[sender] = now + self.client.key_wait
        queue.append(event)
        self._arm_held_timer()
        return True

    def _release_held(self, now: float) -> None:
        """Open what the keys that arrived allow, in each sender's order; past a sender's wait,
        show what still cannot be opened as undecryptable."""
        for sender in list(self._held):
            queue, expired = self._held[sender], now >= self._held_until[sender]
            while queue and self._open_msg(queue[0], sender, waiting=not expired):
                queue.pop(0)
            if not queue:
                del self._held[sender], self._held_until[sender]
        self._arm_held_timer()

    def _arm_held_timer(self) -> None:
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        if self._held and not self.closed:
            loop = asyncio.get_running_loop()
            delay = max(min(self._held_until.values()) - loop.time(), 0.0)
            self._held_timer = loop.call_later(delay, self._held_lapsed)

    def _held_lapsed(self) -> None:
        self._held_timer = None
        self._release_held(asyncio.get_running_loop().time())
        self._drain()

    def _apply(self, event: dict[str, Any], now: float) -> bool:
        """Apply one ordered event; False when it must wait for a sender key."""
        name = event["event"]
        seq, ts = int(event["seq"]), int(event.get("ts", 0))
        crypto = self._crypto
        assert crypto is not None
        if name == Push.MSG:
            return self._apply_msg(event, seq, ts, now)
        if name == Push.MEMBER_LEFT and self._held:
            # The epoch is about to move and take this epoch's chains with it: give held
            # messages their (bounded) chance to open first.
            self._release_held(now)
            if self._held:
                return False
        if name == Push.MEMBER_JOINED:
            member = event["member"]
            admitted = self._admit(member)
            if admitted:
                self._count_unproven(str(member["member_id"]))
            self._retry_keys()
            self._share_keys()
            if admitted and member["member_id"] != self.member_id:
                self._schedule_repin()
                # The role shown is the trusted one `_admit` stored, never the view's claim.
                trusted = self.members[str(member["member_id"])].role
                self._emit(MemberJoined(seq, ts, member["member_id"], member["pseudonym"], trusted))
        elif name == Push.MEMBER_LEFT:
            member_id = str(event["member_id"])
            raw_epoch = event.get("epoch")
            epoch: int = (
                raw_epoch if isinstance(raw_epoch, int) and not isinstance(raw_epoch, bool) else -1
            )
            if not crypto.epoch < epoch <= U32_MAX:
                # Every departure bumps the epoch: one that does not is a replay or a forgery
                # (it would let an old card, key share and envelope come back).
                self._refuse("stale_leave")
                return True
            if event.get("reason") == "removed":
                self._removed.add(member_id)
            info = self.members.pop(member_id, None)
            crypto.remove_member(unb64id(member_id))
            crypto.set_epoch(epoch)
            self._epoch_moved.set()
            self._retry_keys()
            pseudonym = info.pseudonym if info else "?"
            self._emit(MemberLeft(seq, ts, member_id, pseudonym, str(event["reason"]), epoch))
            if member_id == self.member_id:
                self._emit(RoomEnded(seq, ts, str(event["reason"])))
                self._close()
        elif name == Push.MEMBER_UPDATED:
            member = event["member"]
            old = self._name(member["member_id"])
            if not self._apply_member(member):
                return True
            self._emit(
                MemberUpdated(
                    seq, ts, member["member_id"], member["pseudonym"], old, str(member["role"])
                )
            )
        elif name == Push.ROOM_UPDATED:
            if "ends_at" in event:
                self.duration_s, self.ends_at = event.get("duration_s"), event.get("ends_at")
            self._emit(
                RoomUpdated(
                    seq,
                    ts,
                    str(event.get("state")),
                    bool(event.get("paused")),
                    float(event.get("slow_mode_s") or 0),
                )
            )
        elif name == Push.ROOM_ENDED:
            self._emit(RoomEnded(seq, ts, str(event.get("reason"))))
            self._close()
        elif name == Push.MSG_HIDDEN:
            self._emit(MessageHidden(seq, bytes(event["digest"]), bool(event.get("hidden"))))
        elif name == Push.PIN_CLEARED:
            self.pinned = None
            self._emit(PinRemoved(seq, str(event.get("by"))))
        elif name == Push.SESSION_UPDATED:
            self.qa = bool(event.get("qa"))
            rules = event.get("rules")
            self._emit(SessionUpdated(seq, self.qa, rules if isinstance(rules, bytes) else None))
        return True

    def _apply_msg(self, event: dict[str, Any], seq: int, ts: int, now: float) -> bool:
        crypto = self._crypto
        assert crypto is not None
        env = event.get("env")
        if not _parses(env):
            # Not an envelope at all: shown as unreadable, as the browser does (not a relabelling).
            claimed = str(event.get("from"))
            self._emit(DecryptFailed(seq, ts, claimed, self._name(claimed), "malformed"))
            return True
        sender = signed_sender(env, event.get("from"))
        if sender is None or not isinstance(env, bytes):
            self._refuse("relabelled")
            return True
        if sender == self.member_id:
            own = self._own.get(_digest(env))
            if own is not None:
                own.seq, own.ts = seq, ts
                if not (event.get("pin") and self._pinned(own.body, own.text, sender, seq)):
                    self._emit(Message(seq, ts, sender, self.pseudonym, own.text, own.body, True))
            return True
        # Behind a held message of the same sender, or itself waiting for its key: set aside,
        # and the rest of the stream goes on.
        if sender not in self._held and self._open_msg(event, sender, waiting=True):
            return True
        if not self._hold(sender, event, now):
            self._open_msg(event, sender, waiting=False)
        return True

    def _open_msg(self, event: dict[str, Any], sender: str, *, waiting: bool) -> bool:
        """Open and show one message of `sender` (its envelope's signed sender); False, changing
        nothing, when its chain is unknown and we are still `waiting` for the key."""
        crypto = self._crypto
        assert crypto is not None
        env: bytes = event["env"]
        seq, ts = int(event["seq"]), int(event.get("ts", 0))
        try:
            opened = crypto.decrypt(env)
        except e2ee.E2EEError as exc:
            if exc.code == "unknown_chain" and waiting:
                return False
            log.info("envelope not opened", extra={"code": exc.code, "seq": seq})
            self._emit(DecryptFailed(seq, ts, sender, self._name(sender), exc.code))
            return True
        try:
            body = _body(opened)
        except ValueError:
            body = {}
        if event.get("pin") and self._pinned(body, opened.text or "", sender, seq):
            return True
        if "quote" in body and self._role(sender) != "host":
            # "Alice asked: ..." is shown only from a host's answer, never from anyone's body.
            body = {k: v for k, v in body.items() if k != "quote"}
            self._refuse("quote_from_non_host")
        stamp = event.get("stamp")
        evidence = (
            Evidence(env, ts, stamp, opened.franking_key, opened.report_body)
            if isinstance(stamp, bytes)
            else None
        )
        self._emit(
            Message(seq, ts, sender, self._name(sender), opened.text or "", body, False, evidence)
        )
        return True

    def _pinned(self, body: dict[str, Any], text: str, sender: str, seq: int) -> bool:
        """Take a pin from a `msg` marked pin; False if the body is not a pin (shown as a message)."""
        pinned = read_pin(body, text, sender, seq)
        if pinned is None:
            return False
        resent = self.pinned is not None and self.pinned.pin_id == pinned.pin_id
        self.pinned = pinned
        self._emit(PinChanged(seq, sender, self._name(sender), pinned, resent))
        return True

    # sender keys

    def _on_key(self, data: dict[str, Any]) -> None:
        crypto = self._crypto
        skd = data.get("skd")
        if crypto is None or not isinstance(skd, bytes):
            return
        try:
            # Named by its signed sender, as `RoomCrypto.flagged` is, never by the push's `from`.
            sender = b64id(e2ee.parse_skd(skd).sender_id)
        except e2ee.E2EEError:
            sender = str(data.get("from"))
        try:
            crypto.receive_key_share(skd)
        except e2ee.E2EEError as exc:
            if exc.code in ("future_epoch", "wrong_sender"):
                # Its sender's join or the epoch bump has not been applied yet: keep it a while.
                deadline = asyncio.get_running_loop().time() + self.client.key_wait
                self._keys.append((deadline, data))
                while len(self._keys) > MAX_STASHED_KEYS:
                    self._keys.popleft()
            elif exc.code != "old_epoch":
                if exc.code == "equivocation":
                    log.warning("sender key equivocation", extra={"sender": sender})
                else:
                    log.info("sender key refused", extra={"code": exc.code})
                self._emit(KeyRejected(sender, self._name(sender), exc.code))

    def _retry_keys(self) -> None:
        now = asyncio.get_running_loop().time()
        keys, self._keys = self._keys, deque()
        for deadline, data in keys:
            if deadline >= now:
                self._on_key(data)

    def _share_keys(self) -> None:
        """Queue our chain for members who lack it, and send it soon (before any envelope)."""
        crypto = self._crypto
        assert crypto is not None
        shares = crypto.pending_key_shares()
        if shares:
            self._outbox.extend(shares)
            self.client._spawn(self._flush_soon())

    async def _flush_soon(self) -> None:
        with contextlib.suppress(ChatError):
            async with self._send_lock:
                if self._online.is_set():
                    await self._flush_outbox()

    async def _flush_outbox(self) -> None:
        """Send queued sender keys in order; ConnectionLost leaves the rest queued."""
        while self._outbox:
            recipient, skd = self._outbox[0]
            ack = await self.client.call(
                "key.send", {"room_id": self.room_id, "to": b64id(recipient), "skd": skd}
            )
            if isinstance(ack, dict) and not ack.get("ok"):
                error = _error_of(ack)
                if error.code == ErrorCode.RATE_LIMITED:
                    await asyncio.sleep(error.retry_after or 1.0)
                    continue
                if error.code == ErrorCode.UNAVAILABLE:
                    # Keep the key queued: without it the recipient could never open what follows.
                    raise error
                # The recipient left or the epoch moved on: this key is no longer needed.
                if error.code not in (ErrorCode.UNKNOWN_RECIPIENT, "stale_epoch"):
                    log.info("sender key not delivered", extra={"code": error.code})
            if self._outbox and self._outbox[0] == (recipient, skd):
                self._outbox.pop(0)

    def _seal(self, body: bytes, text: str, parsed: dict[str, Any]) -> tuple[bytes, int]:
        """Encrypt under the current chain and queue the keys that open it."""
        crypto = self._crypto
        assert crypto is not None
        env = crypto.encrypt(body)
        self._own[_digest(env)] = _Own(text, parsed)
        while len(self._own) > MAX_OWN_SENT:
            self._own.popitem(last=False)
        self._outbox.extend(crypto.pending_key_shares())
        return env, self._generation

    async def _wait_epoch_change(self, env: bytes) -> None:
        """Wait (a little) until our epoch is past the envelope's: its member.left is on its way."""
        sealed_epoch = e2ee.parse_envelope(env).epoch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.client.key_wait
        while self.epoch <= sealed_epoch and loop.time() < deadline and not self.closed:
            self._epoch_moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._epoch_moved.wait(), deadline - loop.time())

    async def _wait_online(self) -> None:
        if self._online.is_set():
            return
        timeout = self.client.reconnect_timeout + self.client.call_timeout
        try:
            await asyncio.wait_for(self._online.wait(), timeout)
        except TimeoutError:
            raise ConnectionLost() from None
        self._check_open()

    # members and output

    def _admit(self, member: dict[str, Any]) -> bool:
        member_id = str(member["member_id"])
        if member_id in self._removed:
            self._refuse("removed_member")
            return False
        card = bytes(member["card"])
        if not card_derives(card, member_id, unb64id(self.room_id)):
            # The id a view names must be the one its card derives: otherwise a server could pair
            # a real member's id (and its proofs) with a ghost's card.
            self._refuse("card_mismatch")
            return False
        if not self._admitted_by_host(member_id, card, member.get("admission")):
            # A lobby room's member without a host's admission: we share no keys with it.
            log.warning("member without a valid admission ignored")
            return False
        if not self._holds_the_link(member_id, member.get("member_proof")):
            # A private room's card that no link holder vouched for: the server added it.
            self._refuse("unproven_member")
            return False
        if member_id != self.member_id and self._crypto is not None:
            try:
                self._crypto.add_member(card)
            except e2ee.E2EEError as exc:
                log.warning("member card refused", extra={"code": exc.code})
                return False
        self.members[member_id] = self._member_info(member, card)
        return True

    def _member_info(self, view: dict[str, Any], card: bytes) -> MemberInfo:
        claimed, proof = str(view.get("role")), view.get("role_proof")
        proof = proof if isinstance(proof, bytes) else None
        member_id = str(view["member_id"])
        role = self._trusted_role(member_id, card, claimed, proof)
        return MemberInfo(str(view["pseudonym"]), role, card, claimed, proof)

    def _trusted_role(self, member_id: str, card: bytes, claimed: str, proof: bytes | None) -> str:
        """The owner (the charter's host seat in a private room) is a host; anyone else is a
        moderator or co-host only with a statement for exactly that role, signed by a member
        we already count as a host. Demotions need nothing."""
        if member_id == self.host_id and card_derives(card, member_id):
            return "host"
        if claimed not in ("moderator", "host"):
            return "member"
        signer = role_signer(proof)
        voucher = self.members.get(b64id(signer)) if signer is not None else None
        if voucher is None or voucher.role != "host" or b64id(signer or b"") == member_id:
            return "member"
        try:
            ed_public = e2ee.parse_card(voucher.card).ed_public
        except e2ee.E2EEError:
            return "member"
        if verify_role(ed_public, unb64id(self.room_id), unb64id(member_id), claimed, proof):
            return claimed
        return "member"

    def _count_unproven(self, member_id: str) -> None:
        """Count (once per view) a staff role the server claims but no trusted host signed."""
        info = self.members.get(member_id)
        if info is not None and info.claimed in ("moderator", "host") and info.role != info.claimed:
            self._refuse("unproven_role")

    def _admit_snapshot(self, views: list[dict[str, Any]]) -> None:
        """Admit a join or resume snapshot. Admissions count only from trusted hosts, and a
        co-host is trusted only once its signer is, while the list is in the server's order:
        admit and settle roles in rounds until nothing changes; what is left is refused."""
        pending = views
        while pending:
            later = []
            for view in pending:
                card = view.get("card")
                if isinstance(card, bytes) and self._admitted_by_host(
                    str(view["member_id"]), card, view.get("admission")
                ):
                    self._admit(view)
                else:
                    later.append(view)
            self._retrust_roles()
            if len(later) == len(pending):
                break
            pending = later
        for view in pending:
            self._admit(view)  # refused: no host we trust admitted them

    def _retrust_roles(self) -> None:
        """After a snapshot: co-hosts may vouch for each other in any order, so re-check the
        members whose claimed role is not yet proven until nothing changes."""
        changed = True
        while changed:
            changed = False
            for member_id, info in list(self.members.items()):
                if info.claimed in ("moderator", "host") and info.role != info.claimed:
                    role = self._trusted_role(member_id, info.card, info.claimed, info.role_proof)
                    if role != info.role:
                        self.members[member_id] = dataclasses.replace(info, role=role)
                        changed = True

    def _holds_the_link(self, member_id: str, member_proof: Any) -> bool:
        """Private rooms: the member's id is signed with the link key, which the server lacks."""
        secret = self.link.secret
        if secret is None or member_id == self.member_id:
            return True
        return e2ee.verify_member_link_proof(
            secret.join_public, secret.room_id, unb64id(member_id), member_proof
        )

    def _admitted_by_host(self, member_id: str, card: bytes, admission: Any) -> bool:
        if not self.lobby or member_id == self.host_id or member_id == self.member_id:
            return True
        if not isinstance(admission, bytes):
            return False
        hosts = [self.host_card] + [
            m.card for m in self.members.values() if m.role == "host" and m.card
        ]
        for host_card in hosts:
            if host_card is None:
                continue
            try:
                ed_public = e2ee.parse_card(host_card).ed_public
            except e2ee.E2EEError:
                continue
            if credentials.verify_admission(ed_public, admission, unb64id(self.room_id), card):
                return True
        return False

    def _apply_member(self, member: dict[str, Any], *, count: bool = True) -> bool:
        member_id = str(member["member_id"])
        known = self.members.get(member_id)
        if known is None and member_id != self.member_id:
            self._refuse("unknown_member")  # an update cannot list someone never admitted
            return False
        card = known.card if known else bytes(member.get("card") or b"")
        self.members[member_id] = self._member_info(member, card)
        if count:
            self._count_unproven(member_id)
        if member_id == self.member_id:
            self.pseudonym = str(member["pseudonym"])
            self.role = str(member["role"])
        return True

    def _name(self, member_id: str) -> str:
        info = self.members.get(member_id)
        return info.pseudonym if info else "?"

    def _role(self, member_id: str) -> str:
        info = self.members.get(member_id)
        return info.role if info else ""

    def _refuse(self, reason: str) -> None:
        """Count a push refused on its signatures; logged by reason only, never its content."""
        self.refused[reason] += 1
        log.info("push refused", extra={"reason": reason})

    def _emit(self, event: RoomEvent) -> None:
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            log.warning("event queue full; dropping the oldest event")
        self._queue.put_nowait(event)

    def _check_open(self) -> None:
        if self.closed:
            raise ChatError(self._fail_code or "room_closed", "This room is closed.")

    def _fail(self, code: str) -> None:
        self._fail_code = code
        self._emit(RoomEnded(self.seq, 0, code))
        self._close()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._ready = False
        self._online.set()  # wake senders so they see `closed`
        for timer in (self._held_timer, self._gap_timer, self._repin):
            if timer is not None:
                timer.cancel()
        self.client.rooms.pop(self.room_id, None)
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(_CLOSED)


def _error_of(ack: Any) -> ChatError:
    try:
        _checked(ack)
    except ChatError as exc:
        return exc
    return ChatError("unexpected", "The server accepted what was expected to fail.")


__all__ = [
    "ChatClient",
    "ChatError",
    "ConnectionLost",
    "CreatedRoom",
    "DecryptFailed",
    "Evidence",
    "KeyRejected",
    "LobbyUpdate",
    "MemberInfo",
    "MemberJoined",
    "MemberLeft",
    "MemberUpdated",
    "Message",
    "MessageHidden",
    "PinChanged",
    "PinRemoved",
    "Question",
    "Reconnected",
    "ReportReceived",
    "Room",
    "RoomEnded",
    "RoomEvent",
    "RoomUpdated",
    "Sent",
    "SessionUpdated",
    "Typing",
    "Waiting",
    "parse_link",
    "rules_text",
]
