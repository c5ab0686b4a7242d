"""Joining a room and resuming it after a dropped connection: seats, snapshots, catch-up, the pin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING, Any

from chatserver import e2ee
from chatserver.client.common import (
    CATCHUP_RATE_WAITS,
    REPIN_DELAY_S,
    RETRY_LATER,
    _body,
    authority,
)
from chatserver.client.errors import ChatError, ConnectionLost, _checked, _error_of
from chatserver.client.events import PinChanged, Reconnected, Sent
from chatserver.client.room_pushes import RoomPushes
from chatserver.e2ee.seat import sign_seat
from chatserver.pins import body_fields, read_pin
from chatserver.protocol import ErrorCode
from chatserver.protocol.ids import b64id, unb64id
from chatserver.trust import card_derives, signed_sender

log = logging.getLogger("chatserver.client")


class RoomJoining(RoomPushes):
    """Mixed into `Room`: the join, the resume (or a rejoin with a fresh identity), catch-up."""

    if TYPE_CHECKING:  # Room's, above this layer

        async def send(self, text: str, *, pin: bool = False, **extra: Any) -> Sent: ...

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
        ack = await self._resume_call()
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

    async def _resume_call(self) -> Any:
        """room.challenge then room.resume, on this connection; the answer of the last one asked.

        A refusal that says "not now" (`unavailable`: the backend is briefly unreachable;
        `rate_limited`) leaves the seat where it is: asked again with backoff, on the same
        connection, for as long as the client tries to reconnect. Only a refusal that says
        the seat is gone (`resume_failed`, the room ended) ends in a rejoin with a new identity."""
        assert self._crypto is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.client.reconnect_timeout
        delay = self.client.reconnect_delay
        while True:
            ack = await self.client._raw_call("room.challenge", {"room_id": self.room_id}, None)
            if isinstance(ack, dict) and ack.get("ok"):
                proof = sign_seat(self._crypto._identity, unb64id(self.room_id), ack["nonce"])
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
                return ack
            error = _error_of(ack)
            if error.code not in RETRY_LATER or self.closed:
                return ack
            if loop.time() >= deadline:
                raise error  # the reconnect loop starts over (and gives up at its own deadline)
            log.info("resume deferred", extra={"code": error.code})  # never the server's text
            wait = max(error.retry_after or 0.0, delay) * (0.75 + random.random() / 2)  # noqa: S311
            await asyncio.sleep(min(wait, self.client.reconnect_delay_max))
            delay = min(delay * 2, self.client.reconnect_delay_max)
            if not self.client._transport_up:
                raise ConnectionLost()

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
        """One room.catchup; a rate-limited (or `unavailable`) one waits as told and asks again (a
        few times)."""
        payload = {"room_id": self.room_id, "after_seq": after_seq}
        for _ in range(CATCHUP_RATE_WAITS):
            page = await self.client._raw_call("room.catchup", payload, None)
            error = page.get("error") if isinstance(page, dict) else None
            if not isinstance(error, dict) or error.get("code") not in RETRY_LATER:
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
