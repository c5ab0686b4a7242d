"""Handlers for msg.send, pin.clear, key.send and typing: checks on ciphertext the server cannot read.

A pin is an ordinary message marked `pin`: it is sequenced like any other, and the room keeps the
sequenced push so later joiners receive it. They can open it once the pinner's client re-sends it
under the current keys (docs/protocol.md, "Pinned messages").
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from chatserver import e2ee
from chatserver.gateway.common import rate_limit, seat_of
from chatserver.gateway.handlers import slow_mode
from chatserver.gateway.state import Connection
from chatserver.node import Node
from chatserver.ports import AppendRefused, Duplicate, EnvelopeGuard, Versioned, WireEvent
from chatserver.protocol import (
    ErrorCode,
    KeySend,
    KeyShare,
    MsgSend,
    PinClear,
    ProtocolError,
    TypingPayload,
    ok,
)
from chatserver.protocol.ids import b64id, unb64id
from chatserver.protocol.pushes import KeyPush, MsgPush, TypingPush, to_wire
from chatserver.protocol.views import pin_push
from rooms import (
    CheckSend,
    ClearPin,
    Room,
    SetPin,
)
from rooms.errors import RefusalCode

# e2ee error codes the server can meet, as gateway error codes.
_E2EE_TO_GATEWAY = {
    "bad_signature": ErrorCode.BAD_SIGNATURE,
    "wrong_room": ErrorCode.WRONG_ROOM,
    "wrong_sender": ErrorCode.WRONG_SENDER,
}


def refuse_e2ee(exc: e2ee.E2EEError) -> ProtocolError:
    code = _E2EE_TO_GATEWAY.get(exc.code, ErrorCode.BAD_ENVELOPE)
    return ProtocolError(code, f"Envelope refused ({exc.code}).")


# A message is checked against the room this node holds; if another node changed the room
# meanwhile, the append refuses (`stale_state`) and the check runs again on a fresh copy.
STATE_ATTEMPTS = 3


async def msg_send(node: Node, conn: Connection, p: MsgSend) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    now = node.clock.now()
    rate_limit(conn.msg_bucket.take(now), "messages")
    try:
        header = e2ee.parse_envelope(p.env)
        if header.room_id != unb64id(p.room_id):
            raise e2ee.E2EEError("wrong_room")
        if header.sender_id != seat.card.member_id:
            raise e2ee.E2EEError("wrong_sender")
        check = CheckSend(member_id=seat.member_id, epoch=header.epoch, now=now, pin=p.pin)
        current = await _checked(node, p.room_id, check, fresh=False)
        # Once per envelope, never per recipient.
        e2ee.verify_envelope(p.env, seat.card)
    except e2ee.E2EEError as exc:
        node.stats.envelopes[exc.code] += 1
        raise refuse_e2ee(exc) from None
    ts_ms = int(now * 1000)
    stamp = e2ee.server_stamp(node.stamp_key, p.env, ts_ms)
    push = MsgPush(
        room_id=p.room_id,
        ts=ts_ms,
        sender=seat.member_id,
        env=p.env,
        stamp=stamp,
        pin=True if p.pin else msgspec.UNSET,
    )
    event = to_wire(push)
    digest = hashlib.sha256(p.env).digest()
    quotas = node.abuse.message_quotas(p.room_id, seat.member_id)
    for attempt in range(1, STATE_ATTEMPTS + 1):
        slow = slow_mode.quota(current.room, seat.member_id)  # the room may have changed it
        guard = EnvelopeGuard(
            epoch=header.epoch,
            sender_id=seat.member_id,
            key_id=header.key_id,
            index=header.index,
            digest=digest,
            state_version=current.version,
            quotas=quotas if slow is None else (*quotas, slow),
        )
        try:
            appended = await node.bus.append(p.room_id, event, guard=guard)
            break
        except AppendRefused as refused:
            if refused.code == "stale_state" and attempt < STATE_ATTEMPTS:
                current = await _checked(node, p.room_id, check, fresh=True)
                continue
            node.stats.envelopes[refused.code] += 1
            raise _refusal(refused) from None
    if isinstance(appended, Duplicate):
        node.stats.envelopes["duplicate"] += 1
        if p.pin:  # a retry after a lost ack: make sure the pin was kept (idempotent)
            first_stamp = e2ee.server_stamp(node.stamp_key, p.env, appended.ts_ms)
            await _keep_pin(node, p, seat.member_id, appended.seq, appended.ts_ms, first_stamp)
        return ok(seq=appended.seq, ts=appended.ts_ms, duplicate=True)
    node.stats.envelopes["accepted"] += 1
    if p.pin:
        await _keep_pin(node, p, seat.member_id, appended, ts_ms, stamp)
    return ok(seq=appended, ts=ts_ms)


async def _checked(node: Node, room_id: str, check: CheckSend, *, fresh: bool) -> Versioned:
    """May this member send now, by the room this node holds (`fresh`: read again)."""
    try:
        return await node.service.check_held(room_id, check, fresh=fresh)
    except ProtocolError as exc:
        node.stats.envelopes[exc.code] += 1
        raise


def _refusal(refused: AppendRefused) -> ProtocolError:
    if refused.code == "rate_limited":
        wait = max(refused.wait_s, 0.001)
        if refused.quota == slow_mode.SLOW_MODE:
            return ProtocolError(ErrorCode.RATE_LIMITED, "Slow mode is on; wait a moment.", wait)
        return ProtocolError(ErrorCode.RATE_LIMITED, "Too many messages; slow down.", wait)
    if refused.code == "replay":
        return ProtocolError(ErrorCode.REPLAY, "This chain index was already used.")
    if refused.code == "stale_state":
        return ProtocolError(ErrorCode.UNAVAILABLE, "The room is changing; retry.", 0.1)
    return ProtocolError("stale_epoch", "The envelope is for an earlier epoch.")


async def _keep_pin(
    node: Node, p: MsgSend, sender_id: str, seq: int, ts_ms: int, stamp: bytes
) -> None:
    push = pin_push(seq=seq, ts_ms=ts_ms, sender_id=sender_id, env=p.env, stamp=stamp)
    await node.service.apply(p.room_id, SetPin(sender_id, seq, push, node.clock.now()))


async def pin_clear(node: Node, conn: Connection, p: PinClear) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now()), "requests")
    _, seq = await node.service.apply(p.room_id, ClearPin(seat.member_id, node.clock.now()))
    return ok(seq=seq)


async def key_send(node: Node, conn: Connection, p: KeySend) -> dict[str, Any]:
    """A batch of sealed sender keys, each for one member: one seat check, one rate-limit token
    (the batch is one thing the person does), one room load, one bus call. A bad share is refused
    on its own (`refused`); only a bad request as a whole fails the ack."""
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.msg_bucket.take(node.clock.now()), "keys")
    snapshot = await node.store.load(p.room_id)
    if snapshot is None:
        raise ProtocolError(RefusalCode.room_not_found, "No such room.")
    room = snapshot.room
    room_key = unb64id(p.room_id)
    seen: set[str] = set()
    deliveries: list[tuple[str, WireEvent]] = []
    refused: list[dict[str, str]] = []
    for share in p.shares:
        code = _check_share(share, seen, room, room_key, seat.card)
        if code is None:
            event = to_wire(KeyPush(room_id=p.room_id, sender=seat.member_id, skd=share.skd))
            deliveries.append((share.to, event))
        else:
            refused.append({"to": share.to, "code": str(code)})
    if deliveries:
        await node.bus.send_direct_many(p.room_id, deliveries)
    return ok(delivered=len(deliveries), refused=refused)


def _check_share(
    share: KeyShare, seen: set[str], room: Room, room_key: bytes, card: e2ee.KeyCard
) -> str | None:
    """Why one share of a batch is refused, or None: the cheap checks first, the signature last."""
    if share.to in seen:
        return ErrorCode.DUPLICATE_RECIPIENT
    seen.add(share.to)
    if room.member(share.to) is None:
        return ErrorCode.UNKNOWN_RECIPIENT
    try:
        header = e2ee.parse_skd(share.skd)
    except e2ee.E2EEError as exc:
        return refuse_e2ee(exc).code
    if header.room_id != room_key:
        return ErrorCode.WRONG_ROOM
    if b64id(header.recipient_id) != share.to:
        return ErrorCode.UNKNOWN_RECIPIENT
    if header.epoch != room.epoch:
        return RefusalCode.stale_epoch
    try:
        e2ee.verify_skd(share.skd, card)
    except e2ee.E2EEError as exc:
        return refuse_e2ee(exc).code
    return None


async def typing(node: Node, conn: Connection, p: TypingPayload) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.typing_bucket.take(node.clock.now()), "typing updates")
    event = to_wire(TypingPush(room_id=p.room_id, member_id=seat.member_id, on=p.on))
    await node.bus.publish_volatile(p.room_id, event)
    return ok()
