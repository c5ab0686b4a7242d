"""RoomCrypto: one member's end-to-end state for one room (the client-side engine).

It owns the per-room identity, the admitted members' cards, our sending chain
and every peer chain we hold. It performs no I/O: the caller moves bytes
(cards, SKDs, envelopes) over the network and tells it about epoch changes.
Clock and randomness are injected so whole sessions can be replayed in tests.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from .chain import ReceiverChain, SenderChain
from .constants import (
    KEY_LEN,
    MAX_BODY_LEN,
    MAX_CHAINS_PER_SENDER,
    MAX_TOMBSTONES_PER_SENDER,
    MSG_TYPE_TEXT,
    SALT_LEN,
    U32_MAX,
)
from .envelope import EnvelopeHeader, open_with_key, parse_envelope, seal_envelope, verify_envelope
from .errors import E2EEError
from .identity import Identity, KeyCard, parse_card
from .payload import Payload, franked_body, parse_text_body
from .primitives import Rng, ct_eq, default_rng, random_bytes
from .safety import safety_code
from .skd import open_skd, parse_skd, seal_skd


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def encode_text(text: str, **extra: object) -> bytes:
    """Type-1 body: compact UTF-8 JSON ``{"text": ..., **extra}`` (e.g. ``cw``, ``quote``).

    Text that cannot be UTF-8 (lone surrogates) or NaN/Infinity is ``malformed``;
    :meth:`RoomCrypto.encrypt` also checks the result against the body profile.
    """
    try:
        return json.dumps(
            {"text": text, **extra}, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
    except (UnicodeEncodeError, ValueError) as exc:
        raise E2EEError("malformed", "text cannot be encoded as a type-1 body") from exc


def decode_text(body: bytes) -> str:
    """Parse a type-1 body under the body profile (docs/e2ee.md section 6): the ``text``.

    Extra keys are allowed; any violation, whatever the input, is ``malformed``.
    """
    text = parse_text_body(body)["text"]
    assert isinstance(text, str)
    return text


@dataclass(frozen=True)
class Opened:
    """A decrypted, fully verified message."""

    header: EnvelopeHeader
    sender_id: bytes
    msg_type: int
    client_ts_ms: int
    body: bytes = field(repr=False)
    text: str | None = field(repr=False)
    franking_key: bytes = field(repr=False)

    @property
    def report_body(self) -> bytes:
        """The franked body a reporter reveals to :func:`verify_report`."""
        return franked_body(self.msg_type, self.client_ts_ms, self.body)


class RoomCrypto:
    """Sender-keys group encryption for one room, per the v1 envelope spec."""

    def __init__(
        self,
        identity: Identity,
        room_id: bytes,
        *,
        epoch: int = 0,
        now_ms: Callable[[], int] = wall_clock_ms,
        rng: Rng = default_rng,
    ) -> None:
        self._identity = identity
        self._room_id = bytes(room_id)
        self._now_ms = now_ms
        self._rng = rng
        if not 0 <= epoch <= U32_MAX:
            raise E2EEError("malformed", "epoch is u32")
        self._epoch = epoch
        self._card = identity.card(self._room_id, now_ms())
        self._members: dict[bytes, KeyCard] = {}
        self._own: SenderChain | None = None
        self._own_key_ids: set[int] = set()
        self._shared: dict[bytes, int] = {}
        self._chains: dict[bytes, OrderedDict[int, ReceiverChain]] = {}
        # (sender_id -> key_ids) of chains evicted or dropped in this epoch, oldest first:
        # such a chain is never installed again, so its old envelopes cannot be replayed.
        self._tombstones: dict[bytes, OrderedDict[int, None]] = {}
        self._flagged: set[bytes] = set()

    # --- identity and membership -------------------------------------------------

    @property
    def card(self) -> bytes:
        return self._card

    @property
    def member_id(self) -> bytes:
        return self._identity.member_id

    @property
    def room_id(self) -> bytes:
        return self._room_id

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def flagged(self) -> frozenset[bytes]:
        """Members caught equivocating (show this in the UI)."""
        return frozenset(self._flagged)

    def set_epoch(self, epoch: int) -> None:
        """Move to a newer epoch: every chain of an older epoch is dropped.

        Our next send starts a fresh chain and every member needs a new SKD,
        so a member removed before the bump can read nothing sent after it.
        """
        if epoch < self._epoch:
            raise E2EEError("old_epoch", "epochs only move forward")
        if epoch > U32_MAX:
            raise E2EEError("malformed", "epoch is u32")
        if epoch == self._epoch:
            return
        self._epoch = epoch
        self._own = None
        self._shared.clear()
        self._tombstones.clear()
        for sender in list(self._chains):
            kept = OrderedDict((k, c) for k, c in self._chains[sender].items() if c.epoch >= epoch)
            if kept:
                self._chains[sender] = kept
            else:
                del self._chains[sender]

    def add_member(self, card: bytes) -> KeyCard:
        """Admit a verified card; idempotent for the identical card."""
        kc = parse_card(card, self._room_id)
        if ct_eq(kc.member_id, self._identity.member_id):
            return kc
        known = self._members.get(kc.member_id)
        if known is not None:
            if not ct_eq(known.raw, kc.raw):
                raise E2EEError("bad_card", "a different card for a known member")
            return known
        self._members[kc.member_id] = kc
        return kc

    def remove_member(self, member_id: bytes) -> None:
        """Forget a member; its chains of this epoch stay tombstoned should it come back."""
        self._members.pop(member_id, None)
        for key_id in self._chains.pop(member_id, OrderedDict()):
            self._tombstone(member_id, key_id)
        self._shared.pop(member_id, None)

    def _tombstone(self, sender_id: bytes, key_id: int) -> None:
        """Remember a dropped chain for the rest of the epoch (bounded per sender, oldest out)."""
        stones = self._tombstones.setdefault(sender_id, OrderedDict())
        stones[key_id] = None
        stones.move_to_end(key_id)
        while len(stones) > MAX_TOMBSTONES_PER_SENDER:
            stones.popitem(last=False)

    def members(self) -> list[KeyCard]:
        """Other admitted members (our own card is :attr:`card`)."""
        return list(self._members.values())

    def safety_code(self) -> str:
        cards = [self._card, *(m.raw for m in self._members.values())]
        return safety_code(self._room_id, self._epoch, cards)

    # --- sending --------------------------------------------------------------------

    def _ensure_chain(self, *, rotate: bool) -> SenderChain:
        """Our chain for the current epoch; with ``rotate``, also renew an exhausted one.

        Only :meth:`encrypt` rotates on age or count: a share round must never
        replace a chain whose last envelopes still wait for their SKDs.
        """
        own = self._own
        now = self._now_ms()
        if (
            own is None
            or own.epoch != self._epoch
            or (rotate and own.needs_rotation(self._epoch, now))
        ):
            while True:
                key_id = int.from_bytes(random_bytes(self._rng, 4), "big")
                if key_id not in self._own_key_ids:
                    break
            self._own_key_ids.add(key_id)
            own = SenderChain(
                epoch=self._epoch,
                key_id=key_id,
                ck=random_bytes(self._rng, KEY_LEN),
                index=0,
                created_ms=now,
            )
            self._own = own
            self._shared.clear()
        return own

    def pending_key_shares(self) -> list[tuple[bytes, bytes]]:
        """SKDs ``(recipient_id, skd)`` for members lacking our current chain.

        Call it after :meth:`encrypt` (or before, e.g. right after an epoch
        bump) and send the SKDs before the envelope. Each SKD starts at the
        first index sealed since the previous call (the *current* index if
        none), so a member added after we have sent cannot read what came
        before. Marks the recipients as shared.
        """
        own = self._ensure_chain(rotate=False)
        out: list[tuple[bytes, bytes]] = []
        for mid, kc in self._members.items():
            if self._shared.get(mid) == own.key_id:
                continue
            skd = seal_skd(
                self._identity,
                kc,
                room_id=self._room_id,
                epoch=own.epoch,
                key_id=own.key_id,
                start_index=own.share_index,
                chain_key=own.share_ck,
            )
            self._shared[mid] = own.key_id
            out.append((mid, skd))
        own.checkpoint()
        return out

    def encrypt(self, body: bytes | str, *, msg_type: int = MSG_TYPE_TEXT) -> bytes:
        """Seal one message. If this rotates the chain, send ``pending_key_shares()`` first."""
        if isinstance(body, str):
            if msg_type != MSG_TYPE_TEXT:
                raise E2EEError("malformed", "str bodies are type-1 text")
            data = encode_text(body)
        else:
            data = bytes(body)
        if msg_type == MSG_TYPE_TEXT:
            decode_text(data)  # never send what a receiver would refuse
        if not 0 <= msg_type <= 0xFF:
            raise E2EEError("malformed", "msg_type is u8")
        if len(data) > MAX_BODY_LEN:
            raise E2EEError("bad_length", f"body over {MAX_BODY_LEN} bytes")
        own = self._ensure_chain(rotate=True)
        salt = random_bytes(self._rng, SALT_LEN)
        franking_key = random_bytes(self._rng, KEY_LEN)
        index, mk = own.next_key()
        return seal_envelope(
            self._identity,
            room_id=self._room_id,
            epoch=own.epoch,
            key_id=own.key_id,
            index=index,
            mk=mk,
            salt=salt,
            payload=Payload(franking_key, msg_type, self._now_ms(), data),
        )

    # --- receiving ------------------------------------------------------------------

    def _check_epoch(self, epoch: int) -> None:
        if epoch < self._epoch:
            raise E2EEError("old_epoch")
        if epoch > self._epoch:
            raise E2EEError("future_epoch")

    def _sender_card(self, sender_id: bytes) -> KeyCard:
        if ct_eq(sender_id, self._identity.member_id):
            raise E2EEError("own_message")
        card = self._members.get(sender_id)
        if card is None:
            raise E2EEError("wrong_sender", "sender is not an admitted member")
        return card

    def receive_key_share(self, skd: bytes) -> None:
        """Verify and install a peer's chain key; detects equivocation and replays.

        A chain evicted or dropped earlier in this epoch is never reinstalled
        (``replay``): otherwise a re-delivered SKD would reopen its envelopes.
        """
        h = parse_skd(skd)
        if not ct_eq(h.room_id, self._room_id):
            raise E2EEError("wrong_room")
        if not ct_eq(h.recipient_id, self._identity.member_id):
            raise E2EEError("wrong_recipient")
        self._check_epoch(h.epoch)
        card = self._sender_card(h.sender_id)
        content = open_skd(self._identity, skd, card)
        if h.key_id in self._tombstones.get(h.sender_id, ()):
            raise E2EEError("replay", "chain was evicted or dropped in this epoch")
        chains = self._chains.setdefault(h.sender_id, OrderedDict())
        existing = chains.get(h.key_id)
        if existing is not None:
            if existing.consistent_with(content.start_index, content.chain_key):
                return
            self._flagged.add(h.sender_id)
            raise E2EEError("equivocation", "second chain key for the same key_id")
        chains[h.key_id] = ReceiverChain(
            sender_id=h.sender_id,
            epoch=h.epoch,
            key_id=h.key_id,
            ck=content.chain_key,
            next_index=content.start_index,
        )
        while len(chains) > MAX_CHAINS_PER_SENDER:
            evicted, _ = chains.popitem(last=False)
            self._tombstone(h.sender_id, evicted)

    def decrypt(self, envelope: bytes) -> Opened:
        """Receiver order of the spec; no state changes unless every check passes.

        Raises only :class:`E2EEError`, whatever ``envelope`` holds: anything
        unexpected becomes ``malformed`` rather than escaping to the caller.
        """
        try:
            return self._decrypt(envelope)
        except E2EEError:
            raise
        except Exception as exc:
            raise E2EEError("malformed", "unparsable envelope") from exc

    def _decrypt(self, envelope: bytes) -> Opened:
        h = parse_envelope(envelope)
        if not ct_eq(h.room_id, self._room_id):
            raise E2EEError("wrong_room")
        self._check_epoch(h.epoch)
        card = self._sender_card(h.sender_id)
        verify_envelope(envelope, card)
        chain = self._chains.get(h.sender_id, OrderedDict()).get(h.key_id)
        if chain is None or chain.epoch != h.epoch:
            raise E2EEError("unknown_chain")
        now = self._now_ms()
        plan = chain.plan(h.index, now)
        payload = open_with_key(envelope, h, plan.mk)
        text = decode_text(payload.body) if payload.msg_type == MSG_TYPE_TEXT else None
        chain.commit(plan, now)
        chain.expire(now)
        return Opened(
            header=h,
            sender_id=h.sender_id,
            msg_type=payload.msg_type,
            client_ts_ms=payload.client_ts_ms,
            body=payload.body,
            text=text,
            franking_key=payload.franking_key,
        )
