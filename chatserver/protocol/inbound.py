"""What clients send: event names and payload schemas with their size limits, and their parsing.

`docs/protocol.md` documents every name defined here; `tests/test_protocol_docs.py` keeps them in step.
Payloads travel as msgpack over Socket.IO (websocket only); binary fields are msgpack `bin`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from chatserver.e2ee import MAX_ENVELOPE_LEN
from chatserver.protocol.errors import ErrorCode, ProtocolError

# Ids are 16 random or derived bytes, written as unpadded base64url (22 characters). The last
# character carries 2 bits and 4 zero bits, so only A, Q, g, w are canonical there: one id, one string.
ID_PATTERN = r"^[A-Za-z0-9_-]{21}[AQgw]$"
MAX_CARD_BYTES = 256
MAX_SKD_BYTES = 512
# Shares in one `key.send`: at most the default room capacity (`max_capacity`, 500), and small
# enough that a batch of largest shares (`MAX_SKD_BYTES` each, about 546 bytes encoded with its
# `to`) fits in one frame of the default `max_frame_bytes` (80 KiB): 128 x 546 = 69,888 bytes.
# Clients send a larger outbox as several batches.
MAX_KEY_SHARES = 128
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


class KeyShare(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One sealed sender key in a `key.send` batch, for the member `to`."""

    to: MemberId
    skd: Annotated[bytes, msgspec.Meta(max_length=MAX_SKD_BYTES)]


class KeySend(Payload, frozen=True):
    room_id: RoomId
    shares: Annotated[list[KeyShare], msgspec.Meta(min_length=1, max_length=MAX_KEY_SHARES)]


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
