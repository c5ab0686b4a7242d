"""What the server pushes: the event names and one Struct per push, with its fields.

Handlers build a push as its Struct and hand the bus `to_wire(push)` (the map the bus stores and
fans out; ordered pushes get their `seq` from the bus when it appends). Each Struct is the schema
`docs/protocol.md` documents under "Server pushes" (`tests/test_protocol_docs.py` checks every
field both ways). Member and room views are `protocol/views.py` maps.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

import msgspec

WireEvent = dict[str, Any]


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


class PushBody(msgspec.Struct, kw_only=True, frozen=True):
    """Fields every push has. `NAME` is the event name; `ORDERED` pushes carry `seq` and `ts`."""

    NAME: ClassVar[Push]
    ORDERED: ClassVar[bool] = False
    room_id: str


class OrderedPush(PushBody, kw_only=True, frozen=True):
    ORDERED: ClassVar[bool] = True
    ts: int  # server time, ms; `seq` is added by the bus as it appends


class MemberJoinedPush(OrderedPush, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.MEMBER_JOINED
    member: dict[str, Any]


class MemberLeftPush(OrderedPush, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.MEMBER_LEFT
    member_id: str
    reason: str
    epoch: int


class MemberUpdatedPush(OrderedPush, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.MEMBER_UPDATED
    member: dict[str, Any]


class MsgPush(OrderedPush, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.MSG
    sender: str = msgspec.field(name="from")
    env: bytes
    stamp: bytes
    pin: bool | msgspec.UnsetType = msgspec.UNSET  # absent unless the message is the new pin


class RoomUpdatedPush(OrderedPush, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.ROOM_UPDATED
    state: str
    paused: bool
    slow_mode_s: int
    duration_s: float | None
    ends_at: float | None


class RoomEndedPush(OrderedPush, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.ROOM_ENDED
    reason: str


class SessionUpdatedPush(OrderedPush, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.SESSION_UPDATED
    qa: bool
    rules: bytes | None


class MsgHiddenPush(OrderedPush, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.MSG_HIDDEN
    digest: bytes
    hidden: bool


class PinClearedPush(OrderedPush, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.PIN_CLEARED
    by: str


class KeyPush(PushBody, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.KEY
    sender: str = msgspec.field(name="from")
    skd: bytes


class TypingPush(PushBody, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.TYPING
    member_id: str
    on: bool


class LobbyWaitingPush(PushBody, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.LOBBY_WAITING
    waiter: dict[str, Any]


class LobbyAdmittedPush(PushBody, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.LOBBY_ADMITTED


class LobbyDeclinedPush(PushBody, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.LOBBY_DECLINED
    reason: str


class ReportPush(PushBody, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.REPORT
    report: dict[str, Any]


class QaQuestionPush(PushBody, kw_only=True, frozen=True):
    NAME: ClassVar[Push] = Push.QA_QUESTION
    sender: str = msgspec.field(name="from")
    sealed: bytes


PUSHES: dict[Push, type[PushBody]] = {
    cls.NAME: cls
    for cls in (
        MemberJoinedPush,
        MemberLeftPush,
        MemberUpdatedPush,
        MsgPush,
        RoomUpdatedPush,
        RoomEndedPush,
        SessionUpdatedPush,
        MsgHiddenPush,
        PinClearedPush,
        KeyPush,
        TypingPush,
        LobbyWaitingPush,
        LobbyAdmittedPush,
        LobbyDeclinedPush,
        ReportPush,
        QaQuestionPush,
    )
}
assert set(PUSHES) == set(Push), "every push has its Struct"


def to_wire(push: PushBody) -> WireEvent:
    """The map the bus carries: `t` (the name) and the fields under their wire names, bytes kept
    as bytes, an unset optional field left out."""
    event: WireEvent = msgspec.to_builtins(push, builtin_types=(bytes,))
    event["t"] = push.NAME
    return event
