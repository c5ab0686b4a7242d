"""`decide`: the single entry point that rules on every command.

A total function: for any room and any command it returns a `Decision` (the
new room, or None once the room is gone, plus events) or a `Refusal`. It never
raises and never mutates its inputs, so the shell can apply the result with a
compare-and-set and retry on conflict.
"""

from __future__ import annotations

from typing import assert_never

from rooms.commands import (
    AddBanKey,
    Admit,
    Ban,
    CheckSend,
    ClearPin,
    Command,
    CreateRoom,
    Decline,
    Disconnect,
    End,
    Join,
    Knock,
    Leave,
    Lock,
    Mute,
    Remove,
    Rename,
    Report,
    Review,
    SetDuration,
    SetPaused,
    SetPin,
    SetQA,
    SetRole,
    SetRules,
    SetSlowMode,
    Tick,
    Unlock,
    Unmute,
)
from rooms.errors import RefusalCode, refuse
from rooms.lifecycle import create_room, end, tick
from rooms.membership import check_send, disconnect, join, leave, remove, rename
from rooms.model import Room, RoomPolicy
from rooms.moderation import (
    lock,
    mute,
    set_duration,
    set_paused,
    set_role,
    set_slow_mode,
    unlock,
    unmute,
)
from rooms.outcome import Decision, Outcome
from rooms.sessions import (
    add_ban_key,
    admit,
    ban,
    clear_pin,
    decline,
    knock,
    report,
    review,
    set_pin,
    set_qa,
    set_rules,
)

__all__ = ["Decision", "Outcome", "decide"]

DEFAULT_POLICY = RoomPolicy()


def decide(room: Room | None, command: Command, policy: RoomPolicy = DEFAULT_POLICY) -> Outcome:
    """Rule on `command` against `room` (None: no such room) under `policy`.

    A room past its lifetime or its empty grace accepts nothing but `Tick`,
    even if the shell has not ticked it yet: expiry is exact, not best-effort.
    """
    if isinstance(command, CreateRoom):
        return create_room(room, command, policy)
    if room is None:
        return refuse(RefusalCode.room_not_found)
    if isinstance(command, Tick):
        return tick(room, command, policy)
    if room.is_due(command.now, policy):
        return refuse(RefusalCode.room_ended)
    return _apply(room, command, policy)


def _apply(room: Room, command: Command, policy: RoomPolicy) -> Outcome:
    match command:
        case Join():
            return join(room, command, policy)
        case Leave():
            return leave(room, command)
        case Disconnect():
            return disconnect(room, command)
        case Remove():
            return remove(room, command)
        case Rename():
            return rename(room, command, policy)
        case SetRole():
            return set_role(room, command)
        case Mute():
            return mute(room, command)
        case Unmute():
            return unmute(room, command)
        case CheckSend():
            return check_send(room, command)
        case Lock():
            return lock(room, command)
        case Unlock():
            return unlock(room, command)
        case SetPaused():
            return set_paused(room, command)
        case SetSlowMode():
            return set_slow_mode(room, command, policy)
        case End():
            return end(room, command)
        case Knock():
            return knock(room, command, policy)
        case Admit():
            return admit(room, command)
        case Decline():
            return decline(room, command)
        case SetQA():
            return set_qa(room, command)
        case SetRules():
            return set_rules(room, command, policy)
        case Ban():
            return ban(room, command, policy)
        case AddBanKey():
            return add_ban_key(room, command, policy)
        case Report():
            return report(room, command, policy)
        case Review():
            return review(room, command, policy)
        case SetPin():
            return set_pin(room, command, policy)
        case ClearPin():
            return clear_pin(room, command)
        case SetDuration():
            return set_duration(room, command, policy)
        case CreateRoom() | Tick():  # handled before dispatch
            return Decision(room)
        case _:
            assert_never(command)
