"""Translate rooms-core values into the maps sent to clients (never token hashes or anything private)."""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from chatserver.ports import WireEvent
from chatserver.protocol import Push
from rooms import (
    LobbyChanged,
    Member,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    MessageReported,
    PinCleared,
    Room,
    RoomCreated,
    RoomEnded,
    RoomEvent,
    RoomSettingsChanged,
    SessionChanged,
)


def b64id(raw: bytes) -> str:
    """16 raw id bytes as the 22-character unpadded base64url used on the wire."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64id(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def member_view(member: Member) -> dict[str, Any]:
    return {
        "member_id": member.member_id,
        "pseudonym": member.pseudonym,
        "role": str(member.role),
        "card": member.card,
        "joined_at": member.joined_at,
        "muted_until": member.muted_until,
        "admission": member.admission,
        "member_proof": member.member_proof,
        "role_proof": member.role_proof,
    }


_pin_encoder = msgspec.msgpack.Encoder()
_pin_decoder = msgspec.msgpack.Decoder(dict[str, Any])


def pin_push(*, seq: int, ts_ms: int, sender_id: str, env: bytes, stamp: bytes) -> bytes:
    """The sequenced `msg` push of a pin, as the room keeps it for later joiners."""
    push = {"seq": seq, "ts": ts_ms, "from": sender_id, "env": env, "stamp": stamp, "pin": True}
    return _pin_encoder.encode(push)


def room_view(room: Room) -> dict[str, Any]:
    return {
        "room_id": room.room_id,
        "kind": str(room.kind),
        "visibility": str(room.visibility),
        "topic": room.topic,
        "title": room.title_ct,
        "state": str(room.state),
        "epoch": room.epoch,
        "capacity": room.capacity,
        "created_at": room.created_at,
        "expires_at": room.expires_at,
        "host_id": room.host_id,
        "slow_mode_s": room.slow_mode_s,
        "disappear_after_s": room.disappear_after_s,
        "paused": room.paused,
        "lobby": room.lobby,
        "starts_at": room.starts_at,
        "duration_s": room.duration_s,
        "qa": room.qa,
        "rules": room.rules,
        "badge": room.badge,
        "charter": room.charter,
        "ends_at": room.ends_at,
        "pinned": None if room.pinned is None else _pin_decoder.decode(room.pinned.push),
    }


def event_to_wire(room_id: str, event: RoomEvent, ts_ms: int) -> WireEvent | None:
    """The ordered push for a core event, or None for events clients never see."""
    base: WireEvent = {"room_id": room_id, "ts": ts_ms}
    if isinstance(event, MemberJoined):
        return {"t": Push.MEMBER_JOINED, **base, "member": member_view(event.member)}
    if isinstance(event, MemberLeft):
        return {
            "t": Push.MEMBER_LEFT,
            **base,
            "member_id": event.member_id,
            "reason": str(event.reason),
            "epoch": event.epoch,
        }
    if isinstance(event, MemberUpdated):
        return {"t": Push.MEMBER_UPDATED, **base, "member": member_view(event.member)}
    if isinstance(event, RoomEnded):
        return {"t": Push.ROOM_ENDED, **base, "reason": str(event.reason)}
    if isinstance(event, RoomSettingsChanged):
        return {
            "t": Push.ROOM_UPDATED,
            **base,
            "state": str(event.state),
            "paused": event.paused,
            "slow_mode_s": event.slow_mode_s,
            "duration_s": event.duration_s,
            "ends_at": event.ends_at,
        }
    if isinstance(event, SessionChanged):
        return {"t": Push.SESSION_UPDATED, **base, "qa": event.qa, "rules": event.rules}
    if isinstance(event, MessageReported):
        return {"t": Push.MSG_HIDDEN, **base, "digest": event.digest, "hidden": event.hidden}
    if isinstance(event, PinCleared):
        return {"t": Push.PIN_CLEARED, **base, "by": event.actor_id}
    if isinstance(event, LobbyChanged):
        return None  # told to the waiter and the room's staff only, by the moderation handlers
    assert isinstance(event, RoomCreated)
    return None  # creation is answered on the creator's ack; nobody else is in the room yet
