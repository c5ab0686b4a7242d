"""The wire protocol in one place: event names, payload schemas with size limits, error and close codes.

`docs/protocol.md` documents every name defined here; `tests/test_protocol_docs.py` keeps them in step.
Payloads travel as msgpack over Socket.IO (websocket only); binary fields are msgpack `bin`.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from chatserver.e2ee import MAX_ENVELOPE_LEN

# Ids are 16 random or derived bytes, written as unpadded base64url (22 characters). The last
# character carries 2 bits and 4 zero bits, so only A, Q, g, w are canonical there: one id, one string.
ID_PATTERN = r"^[A-Za-z0-9_-]{21}[AQgw]$"
MAX_CARD_BYTES = 256
MAX_SKD_BYTES = 512
MAX_TITLE_BYTES = 512
MAX_TOPIC_CHARS = 64
MAX_DISAPPEAR_AFTER_S = 86400
MAX_NICKNAME_CHARS = 64  # the rooms core enforces the real rule (2-32 after normalisation)
JOIN_KEY_BYTES = 32
PROOF_BYTES = 64
CHARTER_BYTES = 82
ROLE_PROOF_BYTES = 88
NONCE_BYTES = 32
TOKEN_BYTES = 32
MAX_CERT_BYTES = 256
MAX_BADGE_BYTES = 512
MAX_RULES_BYTES = 2048
MAX_QUESTION_BYTES = 2048
MAX_REASON_CHARS = 64
SIG_BYTES = 64
ADMISSION_BYTES = 68
DIGEST_BYTES = 32
FRANKING_KEY_BYTES = 32
STAMP_BYTES = 32

RoomId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
MemberId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
Topic = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TOPIC_CHARS)]
Nickname = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NICKNAME_CHARS)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Signature = Annotated[bytes, msgspec.Meta(min_length=PROOF_BYTES, max_length=PROOF_BYTES)]
Charter = Annotated[bytes, msgspec.Meta(max_length=CHARTER_BYTES)]


class Event(StrEnum):
    """Client-to-server events; each one is acknowledged."""

    ROOM_CREATE = "room.create"
    ROOM_CHALLENGE = "room.challenge"
    ROOM_JOIN = "room.join"
    ROOM_RESUME = "room.resume"
    ROOM_CATCHUP = "room.catchup"
    ROOM_LEAVE = "room.leave"
    ROOM_LIST = "room.list"
    ROOM_INFO = "room.info"
    ROOM_RENAME = "room.rename"
    MSG_SEND = "msg.send"
    KEY_SEND = "key.send"
    TYPING = "typing"
    THERAPIST_CHALLENGE = "therapist.challenge"
    THERAPIST_SIGNIN = "therapist.signin"
    SESSION_CREATE = "session.create"
    LOBBY_KNOCK = "lobby.knock"
    LOBBY_LIST = "lobby.list"
    LOBBY_ADMIT = "lobby.admit"
    LOBBY_DECLINE = "lobby.decline"
    MEMBER_MUTE = "member.mute"
    MEMBER_UNMUTE = "member.unmute"
    MEMBER_REMOVE = "member.remove"
    MEMBER_ROLE = "member.role"
    ROOM_SETTINGS = "room.settings"
    ROOM_END = "room.end"
    REPORT_SEND = "report.send"
    REPORT_REVIEW = "report.review"
    QA_ASK = "qa.ask"
    PIN_CLEAR = "pin.clear"


class Push(StrEnum):
    """Server-to-client events. Those marked ordered carry the room's sequence number `seq`."""

    MEMBER_JOINED = "member.joined"  # ordered
    MEMBER_LEFT = "member.left"  # ordered
    MEMBER_UPDATED = "member.updated"  # ordered
    MSG = "msg"  # ordered
    ROOM_UPDATED = "room.updated"  # ordered
    ROOM_ENDED = "room.ended"  # ordered
    KEY = "key"
    TYPING = "typing"
    SESSION_UPDATED = "session.updated"  # ordered
    MSG_HIDDEN = "msg.hidden"  # ordered
    LOBBY_WAITING = "lobby.waiting"  # to the room's hosts and moderators
    LOBBY_ADMITTED = "lobby.admitted"  # to the waiter
    LOBBY_DECLINED = "lobby.declined"  # to the waiter
    REPORT = "report"  # to the room's hosts and moderators
    QA_QUESTION = "qa.question"  # to one host
    PIN_CLEARED = "pin.cleared"  # ordered


class ErrorCode(StrEnum):
    """Errors of the gateway itself; the rooms core adds its refusal codes (see `error_catalogue`)."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_EVENT = "unknown_event"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    ROOM_NOT_FOUND = "room_not_found"
    ROOM_EXISTS = "room_exists"
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
    ErrorCode.ROOM_NOT_FOUND: "No such room (it may have expired or ended).",
    ErrorCode.ROOM_EXISTS: "A room with this id already exists.",
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


class Payload(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Base of every inbound payload: unknown fields are refused."""


class RoomCreate(Payload, frozen=True):
    kind: Literal["peer", "session"] = "peer"
    listed: bool = False
    topic: Topic | None = None
    # Private rooms: the id and the join key both come from the link secret, which stays client-side.
    room_id: RoomId | None = None
    join_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=JOIN_KEY_BYTES)] | None = None
    title: Annotated[bytes, msgspec.Meta(max_length=MAX_TITLE_BYTES)] | None = None
    capacity: Annotated[int, msgspec.Meta(ge=2, le=10_000)] | None = None
    # The member id (derived from the creator's per-room keys) whose join takes the host seat;
    # required for session rooms.
    host_id: MemberId | None = None
    # Messages vanish from every screen this many seconds after they were sent (0 or absent: never).
    disappear_after_s: Annotated[int, msgspec.Meta(ge=0, le=MAX_DISAPPEAR_AFTER_S)] | None = None
    # Private rooms: the host seat and lobby flag signed with the link key (e2ee/charter.py).
    charter: Charter | None = None


class RoomChallenge(Payload, frozen=True):
    room_id: RoomId


class RoomJoin(Payload, frozen=True):
    room_id: RoomId
    card: Annotated[bytes, msgspec.Meta(max_length=MAX_CARD_BYTES)]
    # The card key's signature over this connection's room challenge (chatserver/e2ee/seat.py).
    seat_proof: Signature
    nickname: Nickname | None = None
    proof: Annotated[bytes, msgspec.Meta(min_length=64, max_length=PROOF_BYTES)] | None = None
    # Private rooms: the link key's signature over the member id (chatserver/e2ee/room_secret.py).
    member_proof: Signature | None = None
    # The person read the room's ground rules (sent with `rules_not_accepted`) and accepts them.
    accept_rules: bool = False


class RoomResume(Payload, frozen=True):
    room_id: RoomId
    member_id: MemberId
    token: Annotated[bytes, msgspec.Meta(min_length=32, max_length=TOKEN_BYTES)]
    seat_proof: Signature
    epoch: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
    last_seq: Seq


class RoomCatchup(Payload, frozen=True):
    """The next page of missed events after a resume whose ack said `more`."""

    room_id: RoomId
    after_seq: Seq


class RoomLeave(Payload, frozen=True):
    room_id: RoomId


class RoomList(Payload, frozen=True):
    topic: Topic | None = None


class RoomInfo(Payload, frozen=True):
    room_id: RoomId
    # Private rooms: the link key's join proof over this connection's room challenge, for the
    # all-zero member id (no seat is taken), so only a link holder learns anything.
    proof: Signature | None = None


class RoomRename(Payload, frozen=True):
    room_id: RoomId
    nickname: Nickname


class MsgSend(Payload, frozen=True):
    room_id: RoomId
    env: Annotated[bytes, msgspec.Meta(max_length=MAX_ENVELOPE_LEN)]
    # Hosts and moderators: make this message the room's pin (later joiners receive it).
    pin: bool = False


class KeySend(Payload, frozen=True):
    room_id: RoomId
    to: MemberId
    skd: Annotated[bytes, msgspec.Meta(max_length=MAX_SKD_BYTES)]


class TypingPayload(Payload, frozen=True):
    room_id: RoomId
    on: bool


class TherapistChallenge(Payload, frozen=True):
    pass


class TherapistSignin(Payload, frozen=True):
    cert: Annotated[bytes, msgspec.Meta(max_length=MAX_CERT_BYTES)]
    sig: Annotated[bytes, msgspec.Meta(min_length=64, max_length=SIG_BYTES)]


class SessionCreate(Payload, frozen=True):
    host_id: MemberId
    badge: Annotated[bytes, msgspec.Meta(max_length=MAX_BADGE_BYTES)]
    listed: bool = False
    topic: Topic | None = None
    room_id: RoomId | None = None
    join_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=JOIN_KEY_BYTES)] | None = None
    title: Annotated[bytes, msgspec.Meta(max_length=MAX_TITLE_BYTES)] | None = None
    capacity: Annotated[int, msgspec.Meta(ge=2, le=10_000)] | None = None
    starts_at: float | None = None
    duration_s: float | None = None
    lobby: bool = True
    qa: bool = False
    rules: Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_RULES_BYTES)] | None = None
    charter: Charter | None = None  # private sessions, as in room.create


class LobbyKnock(Payload, frozen=True):
    room_id: RoomId
    card: Annotated[bytes, msgspec.Meta(max_length=MAX_CARD_BYTES)]
    seat_proof: Signature
    nickname: Nickname | None = None
    proof: Annotated[bytes, msgspec.Meta(min_length=64, max_length=PROOF_BYTES)] | None = None
    accept_rules: bool = False


class LobbyList(Payload, frozen=True):
    room_id: RoomId


class LobbyAdmit(Payload, frozen=True):
    room_id: RoomId
    member_id: MemberId
    admission: Annotated[bytes, msgspec.Meta(min_length=68, max_length=ADMISSION_BYTES)]


class LobbyDecline(Payload, frozen=True):
    room_id: RoomId
    member_id: MemberId


class MemberMute(Payload, frozen=True):
    room_id: RoomId
    member_id: MemberId
    duration_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] | None = None


class MemberUnmute(Payload, frozen=True):
    room_id: RoomId
    member_id: MemberId


class MemberRemove(Payload, frozen=True):
    room_id: RoomId
    member_id: MemberId
    ban: bool = False


class MemberRole(Payload, frozen=True):
    room_id: RoomId
    member_id: MemberId
    role: Literal["member", "moderator", "host"]
    # The acting host's signature over the change, which every client checks.
    role_proof: Annotated[
        bytes, msgspec.Meta(min_length=ROLE_PROOF_BYTES, max_length=ROLE_PROOF_BYTES)
    ]


class RoomSettings(Payload, frozen=True):
    room_id: RoomId
    locked: bool | None = None
    paused: bool | None = None
    slow_mode_s: Annotated[int, msgspec.Meta(ge=0, le=86400)] | None = None
    qa: bool | None = None
    rules: Annotated[bytes, msgspec.Meta(max_length=MAX_RULES_BYTES)] | None = None
    # Hosts: the session's new planned duration (extend it, or shorten it).
    duration_s: Annotated[float, msgspec.Meta(gt=0, le=7 * 86400)] | None = None


class RoomEnd(Payload, frozen=True):
    room_id: RoomId


class PinClear(Payload, frozen=True):
    room_id: RoomId


class ReportSend(Payload, frozen=True):
    room_id: RoomId
    env: Annotated[bytes, msgspec.Meta(max_length=MAX_ENVELOPE_LEN)]
    ts: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    stamp: Annotated[bytes, msgspec.Meta(min_length=32, max_length=STAMP_BYTES)]
    franking_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=FRANKING_KEY_BYTES)]
    body: Annotated[bytes, msgspec.Meta(max_length=MAX_ENVELOPE_LEN)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REASON_CHARS)]


class ReportReview(Payload, frozen=True):
    room_id: RoomId
    digest: Annotated[bytes, msgspec.Meta(min_length=32, max_length=DIGEST_BYTES)]
    hide: bool


class QaAsk(Payload, frozen=True):
    room_id: RoomId
    to: MemberId
    sealed: Annotated[bytes, msgspec.Meta(max_length=MAX_QUESTION_BYTES)]


SCHEMAS: dict[Event, type[Payload]] = {
    Event.ROOM_CREATE: RoomCreate,
    Event.ROOM_CHALLENGE: RoomChallenge,
    Event.ROOM_JOIN: RoomJoin,
    Event.ROOM_RESUME: RoomResume,
    Event.ROOM_CATCHUP: RoomCatchup,
    Event.ROOM_LEAVE: RoomLeave,
    Event.ROOM_LIST: RoomList,
    Event.ROOM_INFO: RoomInfo,
    Event.ROOM_RENAME: RoomRename,
    Event.MSG_SEND: MsgSend,
    Event.KEY_SEND: KeySend,
    Event.TYPING: TypingPayload,
    Event.THERAPIST_CHALLENGE: TherapistChallenge,
    Event.THERAPIST_SIGNIN: TherapistSignin,
    Event.SESSION_CREATE: SessionCreate,
    Event.LOBBY_KNOCK: LobbyKnock,
    Event.LOBBY_LIST: LobbyList,
    Event.LOBBY_ADMIT: LobbyAdmit,
    Event.LOBBY_DECLINE: LobbyDecline,
    Event.MEMBER_MUTE: MemberMute,
    Event.MEMBER_UNMUTE: MemberUnmute,
    Event.MEMBER_REMOVE: MemberRemove,
    Event.MEMBER_ROLE: MemberRole,
    Event.ROOM_SETTINGS: RoomSettings,
    Event.ROOM_END: RoomEnd,
    Event.REPORT_SEND: ReportSend,
    Event.REPORT_REVIEW: ReportReview,
    Event.QA_ASK: QaAsk,
    Event.PIN_CLEAR: PinClear,
}

P = TypeVar("P", bound=Payload)


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


def parse(schema: type[P], data: Any) -> P:
    """Validate an inbound payload against its schema, or raise a ProtocolError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "The payload must be a map.")
    try:
        return msgspec.convert(data, schema, strict=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        code = ErrorCode.PAYLOAD_TOO_LARGE if "length <=" in text else ErrorCode.BAD_REQUEST
        # msgspec names the field and the rule, never the offending value.
        raise ProtocolError(code, text[:200]) from None


def ok(**fields: Any) -> dict[str, Any]:
    """A successful ack."""
    return {"ok": True, **fields}
