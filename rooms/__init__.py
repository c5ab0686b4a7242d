"""The functional core of chatserver: rooms, members, and every rule about them.

Pure: no I/O, no clock, no randomness. Time (`now`) and entropy arrive inside
commands; `decide(room, command, policy)` returns a `Decision` or a `Refusal`.
The shell (`chatserver/`) stores rooms, broadcasts events and enforces nothing
itself that is decided here.
"""

from rooms.commands import (
    CheckSend,
    Command,
    CreateRoom,
    Disconnect,
    End,
    Join,
    Leave,
    Lock,
    Mute,
    Remove,
    Rename,
    SetPaused,
    SetRole,
    SetSlowMode,
    Tick,
    Unlock,
    Unmute,
)
from rooms.decide import DEFAULT_POLICY, decide
from rooms.directory import DirectoryEntry, directory_entry
from rooms.errors import REFUSAL_DESCRIPTIONS, Refusal, RefusalCode
from rooms.events import (
    EndReason,
    LeaveReason,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    RoomCreated,
    RoomEnded,
    RoomEvent,
    RoomSettingsChanged,
)
from rooms.model import Member, Role, Room, RoomKind, RoomPolicy, RoomState, Visibility
from rooms.nicknames import validate_nickname
from rooms.outcome import Decision, Outcome

__all__ = [
    "DEFAULT_POLICY",
    "REFUSAL_DESCRIPTIONS",
    "CheckSend",
    "Command",
    "CreateRoom",
    "Decision",
    "DirectoryEntry",
    "Disconnect",
    "End",
    "EndReason",
    "Join",
    "Leave",
    "LeaveReason",
    "Lock",
    "Member",
    "MemberJoined",
    "MemberLeft",
    "MemberUpdated",
    "Mute",
    "Outcome",
    "Refusal",
    "RefusalCode",
    "Remove",
    "Rename",
    "Role",
    "Room",
    "RoomCreated",
    "RoomEnded",
    "RoomEvent",
    "RoomKind",
    "RoomPolicy",
    "RoomSettingsChanged",
    "RoomState",
    "SetPaused",
    "SetRole",
    "SetSlowMode",
    "Tick",
    "Unlock",
    "Unmute",
    "Visibility",
    "decide",
    "directory_entry",
    "validate_nickname",
]
