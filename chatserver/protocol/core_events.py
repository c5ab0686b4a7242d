"""The rooms core's events as the ordered pushes clients see."""

from __future__ import annotations

from typing import Any

from chatserver.protocol.pushes import (
    MemberJoinedPush,
    MemberLeftPush,
    MemberUpdatedPush,
    MsgHiddenPush,
    OrderedPush,
    PinClearedPush,
    RoomEndedPush,
    RoomUpdatedPush,
    SessionUpdatedPush,
    WireEvent,
    to_wire,
)
from chatserver.protocol.views import member_view
from rooms import (
    LobbyChanged,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    MessageReported,
    PinCleared,
    RoomCreated,
    RoomEnded,
    RoomEvent,
    RoomSettingsChanged,
    SessionChanged,
)


def event_to_wire(room_id: str, event: RoomEvent, ts_ms: int) -> WireEvent | None:
    """The ordered push for a core event, or None for events clients never see."""
    push = core_push(room_id, event, ts_ms)
    return None if push is None else to_wire(push)


def core_push(room_id: str, event: RoomEvent, ts_ms: int) -> OrderedPush | None:
    """The push Struct of a core event."""
    base: dict[str, Any] = {"room_id": room_id, "ts": ts_ms}
    if isinstance(event, MemberJoined):
        return MemberJoinedPush(**base, member=member_view(event.member))
    if isinstance(event, MemberLeft):
        return MemberLeftPush(
            **base, member_id=event.member_id, reason=str(event.reason), epoch=event.epoch
        )
    if isinstance(event, MemberUpdated):
        return MemberUpdatedPush(**base, member=member_view(event.member))
    if isinstance(event, RoomEnded):
        return RoomEndedPush(**base, reason=str(event.reason))
    if isinstance(event, RoomSettingsChanged):
        return RoomUpdatedPush(
            **base,
            state=str(event.state),
            paused=event.paused,
            slow_mode_s=event.slow_mode_s,
            duration_s=event.duration_s,
            ends_at=event.ends_at,
        )
    if isinstance(event, SessionChanged):
        return SessionUpdatedPush(**base, qa=event.qa, rules=event.rules)
    if isinstance(event, MessageReported):
        return MsgHiddenPush(**base, digest=event.digest, hidden=event.hidden)
    if isinstance(event, PinCleared):
        return PinClearedPush(**base, by=event.actor_id)
    if isinstance(event, LobbyChanged):
        return None  # told to the waiter and the room's staff only, by the moderation handlers
    assert isinstance(event, RoomCreated)
    return None  # creation is answered on the creator's ack; nobody else is in the room yet
