"""The catalogue of reasons `decide` can refuse a command.

Codes are stable lower_snake strings: clients branch on them and docs/protocol.md
is rendered from `REFUSAL_DESCRIPTIONS`, so a code is never renamed, only added.
Messages are fixed sentences chosen per code and call site; they never quote the
rejected input, so a refusal is always safe to send back and to log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class RefusalCode(StrEnum):
    """Why a command was refused. Stable: add codes, never rename them."""

    room_not_found = "room_not_found"
    room_exists = "room_exists"
    room_full = "room_full"
    room_locked = "room_locked"
    room_ended = "room_ended"
    host_absent = "host_absent"
    host_required = "host_required"
    already_member = "already_member"
    not_member = "not_member"
    forbidden = "forbidden"
    join_proof_required = "join_proof_required"
    bad_proof = "bad_proof"
    nickname_invalid = "nickname_invalid"
    nickname_taken = "nickname_taken"
    nickname_reserved = "nickname_reserved"
    nickname_confusable = "nickname_confusable"
    stale_epoch = "stale_epoch"
    muted = "muted"
    paused = "paused"
    invalid_capacity = "invalid_capacity"
    invalid_topic = "invalid_topic"
    invalid_title = "invalid_title"
    invalid_join_key = "invalid_join_key"
    invalid_duration = "invalid_duration"
    lobby_required = "lobby_required"
    not_waiting = "not_waiting"
    not_started = "not_started"
    lobby_full = "lobby_full"
    banned = "banned"
    rules_not_accepted = "rules_not_accepted"
    qa_only = "qa_only"
    invalid_schedule = "invalid_schedule"
    invalid_rules = "invalid_rules"
    invalid_pin = "invalid_pin"


REFUSAL_DESCRIPTIONS: Mapping[RefusalCode, str] = MappingProxyType(
    {
        RefusalCode.room_not_found: "No such room: it never existed or has already ended.",
        RefusalCode.room_exists: "A room with this id already exists.",
        RefusalCode.room_full: "The room has reached its capacity.",
        RefusalCode.room_locked: "The room is locked: nobody new may join until it is unlocked.",
        RefusalCode.room_ended: "The room has ended (by its host, by expiry, or by staying empty).",
        RefusalCode.host_absent: (
            "A therapist-led session admits participants only while its host is present."
        ),
        RefusalCode.host_required: (
            "A session room must name its host seat; a peer room may name one or not."
        ),
        RefusalCode.already_member: "The member is already in the room.",
        RefusalCode.not_member: "The member (actor or target) is not in the room.",
        RefusalCode.forbidden: "The actor's role does not permit this action on this target.",
        RefusalCode.join_proof_required: "A private room needs proof of its link secret to join.",
        RefusalCode.bad_proof: "The proof of the link secret did not verify.",
        RefusalCode.nickname_invalid: (
            "The nickname has the wrong length, no letter or digit, or characters that are "
            "invisible, control, private-use, unassigned or otherwise unsafe."
        ),
        RefusalCode.nickname_taken: "Another member already uses this nickname (ignoring case).",
        RefusalCode.nickname_reserved: (
            "The nickname imitates a role such as therapist, moderator, host, admin or doctor."
        ),
        RefusalCode.nickname_confusable: (
            "The nickname looks like another member's (look-alike letters, digits or scripts)."
        ),
        RefusalCode.stale_epoch: (
            "The envelope was sealed for an older (or unknown) epoch; rekey and resend."
        ),
        RefusalCode.muted: "The member is muted.",
        RefusalCode.paused: "The room is paused: only hosts and moderators may send.",
        RefusalCode.invalid_capacity: "The capacity is outside the operator's limits.",
        RefusalCode.invalid_topic: (
            "The topic is missing (listed rooms need one), too long, or has unsafe characters."
        ),
        RefusalCode.invalid_title: "The encrypted title is too large.",
        RefusalCode.invalid_join_key: (
            "Unlisted rooms need a join key of sensible size; listed rooms must not have one."
        ),
        RefusalCode.invalid_duration: "The duration is negative, not a number, or too long.",
        RefusalCode.lobby_required: (
            "This session has a lobby: knock (lobby.knock) and wait for a host to admit you."
        ),
        RefusalCode.not_waiting: "Nobody with this id is waiting in the lobby.",
        RefusalCode.not_started: "The session has not started yet; admissions open at its start.",
        RefusalCode.lobby_full: "The lobby is full; try again later.",
        RefusalCode.banned: "You cannot enter this room.",
        RefusalCode.rules_not_accepted: "Accept the room's ground rules to enter.",
        RefusalCode.qa_only: (
            "The session is in Q&A mode: only hosts post; send your question to the hosts."
        ),
        RefusalCode.invalid_schedule: (
            "The start time or duration is not a number, in the past, or beyond the room's life."
        ),
        RefusalCode.invalid_rules: "The ground rules or badge are too large.",
        RefusalCode.invalid_pin: "The pinned message is too large.",
    }
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A typed "no": a catalogued code plus a client-safe sentence."""

    code: RefusalCode
    message: str


def refuse(code: RefusalCode, message: str | None = None) -> Refusal:
    """Build a refusal; without a specific message, the catalogue description is used."""
    return Refusal(code, message if message is not None else REFUSAL_DESCRIPTIONS[code])
