"""A room's ordered pushes: applied strictly in `seq` order, held back for a missing key or a gap."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from chatserver import e2ee
from chatserver.client.common import (
    _STAFF_PUSHES,
    MAX_HELD_PER_SENDER,
    MAX_QUEUED_EVENTS,
    MAX_WAITING_EVENTS,
    U32_MAX,
    _body,
    _digest,
    _parses,
    question_info,
)
from chatserver.client.events import (
    DecryptFailed,
    Evidence,
    LobbyUpdate,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    Message,
    MessageHidden,
    PinChanged,
    PinRemoved,
    Question,
    Reconnected,
    ReportReceived,
    RoomEnded,
    RoomUpdated,
    SessionUpdated,
    Typing,
)
from chatserver.client.room_keys import RoomKeys
from chatserver.e2ee.primitives import hpke_open
from chatserver.e2ee.question import open_question
from chatserver.pins import read_pin
from chatserver.protocol import Push
from chatserver.protocol.ids import unb64id
from chatserver.trust import signed_sender

log = logging.getLogger("chatserver.client")


class RoomPushes(RoomKeys):
    """Mixed into `Room` (under `RoomJoining`): every push the room receives, in order."""

    if TYPE_CHECKING:  # RoomJoining's, above this layer

        def _schedule_repin(self) -> None: ...

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
            # What lay in the hole is lost to us: say so, never silently (same seat, a gap).
            self._emit(Reconnected(resumed=True, gap=True, member_id=self.member_id))
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
