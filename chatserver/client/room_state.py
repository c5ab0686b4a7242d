"""A room's state, and how events reach the application (the base of `Room` and its mixins)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, OrderedDict, deque
from typing import Any

from chatserver import e2ee
from chatserver.client.common import _CLOSED, MAX_QUEUED_EVENTS, _Closed, _Own
from chatserver.client.errors import ChatError
from chatserver.client.events import MemberInfo, RoomEnded, RoomEvent
from chatserver.client.ports import RoomHost
from chatserver.links import RoomLink
from chatserver.pins import Pinned
from chatserver.protocol.ids import b64id

log = logging.getLogger("chatserver.client")


class RoomState:
    """Everything one joined room holds; the mixins of `Room` read and update it."""

    def __init__(
        self,
        client: RoomHost,
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

    @property
    def epoch(self) -> int:
        return self._crypto.epoch if self._crypto is not None else 0

    @property
    def flagged(self) -> frozenset[str]:
        """Members caught equivocating on their sender keys."""
        if self._crypto is None:
            return frozenset()
        return frozenset(b64id(m) for m in self._crypto.flagged)

    # output

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
