"""Every refusal a client can read, in one catalogue: the gateway's codes and the rooms core's
refusal codes (one name, one meaning, never both), the close codes, and the ack shapes.

`docs/protocol.md` lists each under "Error-code catalogue"; `tests/test_protocol_docs.py` checks it.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

from rooms.errors import REFUSAL_DESCRIPTIONS, RefusalCode


class ErrorCode(StrEnum):
    """Errors of the gateway itself; the rooms core's refusals (`RefusalCode`) are the rest of the
    catalogue, and a name lives in one of the two only (`room_not_found`, `room_exists`: the core's)."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_EVENT = "unknown_event"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    NOT_IN_ROOM = "not_in_room"
    TOO_MANY_ROOMS = "too_many_rooms"
    NO_CHALLENGE = "no_challenge"
    BAD_SEAT_PROOF = "bad_seat_proof"
    BAD_MEMBER_PROOF = "bad_member_proof"
    BAD_CHARTER = "bad_charter"
    BAD_ROLE_PROOF = "bad_role_proof"
    BAD_CARD = "bad_card"
    BAD_ENVELOPE = "bad_envelope"
    BAD_SIGNATURE = "bad_signature"
    WRONG_ROOM = "wrong_room"
    WRONG_SENDER = "wrong_sender"
    REPLAY = "replay"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    DUPLICATE_RECIPIENT = "duplicate_recipient"
    RESUME_FAILED = "resume_failed"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    NOT_SIGNED_IN = "not_signed_in"
    CREDENTIAL_MALFORMED = "credential_malformed"
    CREDENTIAL_TAMPERED = "credential_tampered"
    CREDENTIAL_EXPIRED = "credential_expired"
    CREDENTIAL_REVOKED = "credential_revoked"
    BAD_BADGE = "bad_badge"
    BAD_ADMISSION = "bad_admission"
    BAD_REPORT = "bad_report"
    UNKNOWN_REASON = "unknown_reason"
    NOT_STAFF = "not_staff"


GATEWAY_ERRORS: dict[str, str] = {
    ErrorCode.BAD_REQUEST: "The payload is missing a field, has a wrong type or a value out of range.",
    ErrorCode.UNKNOWN_EVENT: "The server does not know this event.",
    ErrorCode.PAYLOAD_TOO_LARGE: "A field is larger than its limit.",
    ErrorCode.RATE_LIMITED: "Too many requests; retry after `retry_after` seconds.",
    ErrorCode.NOT_IN_ROOM: "This connection is not a member of the room.",
    ErrorCode.TOO_MANY_ROOMS: "This connection is already in the maximum number of rooms.",
    ErrorCode.NO_CHALLENGE: (
        "Ask for a challenge (room.challenge) on this connection before joining, knocking or "
        "resuming; a challenge is used once and lapses after 60 s."
    ),
    ErrorCode.BAD_ROLE_PROOF: (
        "A role change carries the acting host's signed statement for exactly that member and "
        "role (chatserver/e2ee/roles.py)."
    ),
    ErrorCode.BAD_CHARTER: (
        "A private room needs its charter: the host seat and lobby flag signed with the link "
        "key, matching `host_id` and `lobby`."
    ),
    ErrorCode.BAD_MEMBER_PROOF: (
        "A private room needs the member link proof: the link key's signature over this "
        "member's id, which the other members check."
    ),
    ErrorCode.BAD_SEAT_PROOF: (
        "The seat proof does not verify: sign the room challenge with the key of the card "
        "(for a resume, the card the seat holds)."
    ),
    ErrorCode.BAD_CARD: "The key card is malformed, for another room, or its signature is invalid.",
    ErrorCode.BAD_ENVELOPE: "The envelope or sealed key is malformed (version, suite or length).",
    ErrorCode.BAD_SIGNATURE: "The signature does not verify against the sender's key card.",
    ErrorCode.WRONG_ROOM: "The envelope names another room.",
    ErrorCode.WRONG_SENDER: "The envelope names another sender than this member.",
    ErrorCode.REPLAY: "The chain index does not increase: a replay or a stale retry.",
    ErrorCode.UNKNOWN_RECIPIENT: "The recipient is not a member of the room.",
    ErrorCode.DUPLICATE_RECIPIENT: (
        "The batch already holds a share for this recipient; send the other in a later batch."
    ),
    ErrorCode.RESUME_FAILED: "The seat cannot be resumed (expired or wrong token); join again.",
    ErrorCode.UNAVAILABLE: "The server cannot take this now (e.g. shutting down); retry.",
    ErrorCode.INTERNAL: "An unexpected server error; nothing was changed.",
    ErrorCode.NOT_SIGNED_IN: "Sign in with a therapist credential first (therapist.signin).",
    ErrorCode.CREDENTIAL_MALFORMED: "The credential is not a chatserver therapist credential.",
    ErrorCode.CREDENTIAL_TAMPERED: (
        "The credential's signature does not verify (altered, or from another server), or the "
        "proof of possession is wrong."
    ),
    ErrorCode.CREDENTIAL_EXPIRED: "The credential has expired; ask the operator for a new one.",
    ErrorCode.CREDENTIAL_REVOKED: "The credential was revoked by the operator.",
    ErrorCode.BAD_BADGE: "The badge does not bind the signed-in credential to this room's host.",
    ErrorCode.BAD_ADMISSION: "The admission is not the host's signature over the waiter's card.",
    ErrorCode.BAD_REPORT: (
        "The report does not verify: the stamp is not this server's for that envelope, or the "
        "text and franking key do not match its commitment."
    ),
    ErrorCode.UNKNOWN_REASON: "The report reason is not one of the operator's list.",
    ErrorCode.NOT_STAFF: "Only the room's hosts and moderators may do this.",
}


class CloseCode(IntEnum):
    """Websocket close codes: 3000-3499 ask the client to reconnect, 3500-3999 are terminal."""

    SHUTDOWN = 3001  # the node is draining; reconnect (to any node)
    RESYNC = 3002  # the node lost events it cannot recover; reconnect and resume (expect a gap)
    SLOW_CONSUMER = 3008  # the client fell behind its bounded send queue; reconnect and resume
    CONNECT_TIMEOUT = 3009  # the websocket opened but sent no Socket.IO connect in time; reconnect
    POLICY = 3500  # the client broke the protocol repeatedly; do not reconnect automatically


class ProtocolError(Exception):
    """A refusal to send back on the ack; `message` is safe to show and never echoes input.

    `details` adds fields the caller needs to act on the refusal (e.g. the ground rules it must
    accept); never anything the caller could not see anyway."""

    def __init__(
        self,
        code: str,
        message: str,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.details = details or {}

    def to_ack(self) -> dict[str, Any]:
        error: dict[str, Any] = {**self.details, "code": self.code, "message": self.message}
        if self.retry_after is not None:
            error["retry_after"] = round(self.retry_after, 3)
        return {"ok": False, "error": error}


def with_rules(exc: ProtocolError, rules: bytes | None) -> ProtocolError:
    """A `rules_not_accepted` refusal carries the rules, so the person can read them first."""
    if exc.code != "rules_not_accepted" or rules is None:
        return exc
    return ProtocolError(exc.code, exc.message, details={"rules": rules})


def ok(**fields: Any) -> dict[str, Any]:
    """A successful ack."""
    return {"ok": True, **fields}


# The one catalogue: every code a client may read on an ack, with what it means.
CATALOGUE: dict[str, str] = {
    **GATEWAY_ERRORS,
    **{str(k): v for k, v in REFUSAL_DESCRIPTIONS.items()},
}
assert len(CATALOGUE) == len(GATEWAY_ERRORS) + len(REFUSAL_DESCRIPTIONS), "a code in both halves"

__all__ = [
    "CATALOGUE",
    "GATEWAY_ERRORS",
    "CloseCode",
    "ErrorCode",
    "ProtocolError",
    "RefusalCode",
    "ok",
    "with_rules",
]
