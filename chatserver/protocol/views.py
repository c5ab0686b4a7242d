"""The member and room views clients get on acks and in pushes (never token hashes or anything
private), and the stored form of a pin's push."""

from __future__ import annotations

from typing import Any

import msgspec

from rooms import Member, Room


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
