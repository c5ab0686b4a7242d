"""Therapist-led sessions and reports: the lobby, Q&A mode, ground rules, bans and flagged messages.

A lobby room admits nobody directly: a participant knocks (`Knock`), waits as a `Waiter` (not a
member: they receive nothing of the conversation and no keys), and a host or moderator admits
(`Admit`, carrying the host's signature over their card) or declines them. The admitted waiter's
next `Join` makes them a member. Before a scheduled start only the lobby fills.

Reports are counted per message (by envelope digest) and per distinct reporter; at the policy's
threshold the message is hidden for everyone pending a moderator's review (`Review`).
"""

from __future__ import annotations

from dataclasses import replace

from rooms.commands import (
    AddBanKey,
    Admit,
    Ban,
    ClearPin,
    Decline,
    Knock,
    Report,
    Review,
    SetPin,
    SetQA,
    SetRules,
)
from rooms.errors import Refusal, RefusalCode, refuse
from rooms.events import (
    LeaveReason,
    LobbyChanged,
    LobbyStatus,
    MessageReported,
    PinCleared,
    SessionChanged,
)
from rooms.guards import find_member, forbidden, is_staff, may_act_on
from rooms.membership import depart
from rooms.model import Flag, Pin, Role, Room, RoomPolicy, RoomState, Visibility, Waiter
from rooms.nicknames import TakenNames, taken_names, validate_nickname
from rooms.outcome import Decision, Outcome
from rooms.pseudonyms import assign


def _taken(room: Room, but: str | None = None) -> TakenNames:
    return taken_names(room.members, but, room.waiting)


def knock(room: Room, cmd: Knock, policy: RoomPolicy) -> Outcome:
    """Enter the lobby (idempotent for someone already waiting)."""
    if room.visibility is Visibility.unlisted:
        if cmd.proof_ok is None:
            return refuse(RefusalCode.join_proof_required)
        if not cmd.proof_ok:
            return refuse(RefusalCode.bad_proof)
    if not room.lobby:
        return forbidden("This room has no lobby; join it directly.")
    if cmd.banned:
        return refuse(RefusalCode.banned)
    if room.member(cmd.member_id) is not None:
        return refuse(RefusalCode.already_member)
    if room.waiter(cmd.member_id) is not None:
        return Decision(room)
    if room.rules is not None and not cmd.rules_accepted:
        return refuse(RefusalCode.rules_not_accepted)
    if room.state is RoomState.locked:
        return refuse(RefusalCode.room_locked)
    if len(room.waiting) >= policy.max_waiting:
        return refuse(RefusalCode.lobby_full)
    taken = _taken(room)
    if cmd.nickname is None:
        pseudonym = assign(cmd.pseudonym_entropy, taken)
    else:
        checked = validate_nickname(
            cmd.nickname,
            taken,
            min_chars=policy.min_nickname_chars,
            max_chars=policy.max_nickname_chars,
        )
        if isinstance(checked, Refusal):
            return checked
        pseudonym = checked
    waiter = Waiter(cmd.member_id, cmd.card, pseudonym, cmd.now)
    new = replace(room, waiting=(*room.waiting, waiter))
    return Decision(new, (LobbyChanged(waiter, LobbyStatus.waiting),))


def _staff(room: Room, actor_id: str, what: str) -> Refusal | None:
    actor = find_member(room, actor_id)
    if isinstance(actor, Refusal):
        return actor
    if not is_staff(actor):
        return forbidden(f"Only a host or moderator can {what}.")
    return None


def admit(room: Room, cmd: Admit) -> Outcome:
    """Admit a waiter (not before the scheduled start); they join next with their signed card."""
    refusal = _staff(room, cmd.actor_id, "admit from the lobby")
    if refusal is not None:
        return refusal
    waiter = room.waiter(cmd.member_id)
    if waiter is None:
        return refuse(RefusalCode.not_waiting)
    if room.starts_at is not None and cmd.now < room.starts_at:
        return refuse(RefusalCode.not_started)
    admitted = sum(1 for w in room.waiting if w.admission is not None and w is not waiter)
    if len(room.members) + admitted >= room.capacity:
        return refuse(RefusalCode.room_full)
    if waiter.admission == cmd.admission:
        return Decision(room)
    updated = replace(waiter, admission=cmd.admission)
    waiting = tuple(updated if w is waiter else w for w in room.waiting)
    return Decision(replace(room, waiting=waiting), (LobbyChanged(updated, LobbyStatus.admitted),))


def drop_waiter(room: Room, waiter: Waiter, status: LobbyStatus) -> Decision:
    """Take a waiter out of the lobby and say why."""
    waiting = tuple(w for w in room.waiting if w is not waiter)
    return Decision(replace(room, waiting=waiting), (LobbyChanged(waiter, status),))


def decline(room: Room, cmd: Decline) -> Outcome:
    """Staff turn a waiter away; a waiter may also withdraw themselves."""
    waiter = room.waiter(cmd.member_id)
    if cmd.actor_id == cmd.member_id and waiter is not None:
        return drop_waiter(room, waiter, LobbyStatus.left)
    refusal = _staff(room, cmd.actor_id, "decline from the lobby")
    if refusal is not None:
        return refusal
    if waiter is None:
        return refuse(RefusalCode.not_waiting)
    return drop_waiter(room, waiter, LobbyStatus.declined)


def set_qa(room: Room, cmd: SetQA) -> Outcome:
    """Q&A mode: only hosts post to the room (hosts only may switch it)."""
    actor = find_member(room, cmd.actor_id)
    if isinstance(actor, Refusal):
        return actor
    if actor.role is not Role.host:
        return forbidden("Only a host can switch Q&A mode.")
    if room.qa == cmd.qa:
        return Decision(room)
    return Decision(replace(room, qa=cmd.qa), (SessionChanged(cmd.qa, room.rules),))


def set_rules(room: Room, cmd: SetRules, policy: RoomPolicy) -> Outcome:
    """Replace the ground rules (shown in the lobby and accepted before entering)."""
    refusal = _staff(room, cmd.actor_id, "set the ground rules")
    if refusal is not None:
        return refusal
    if cmd.rules is not None and not 0 < len(cmd.rules) <= policy.max_rules_bytes:
        return refuse(RefusalCode.invalid_rules)
    if room.rules == cmd.rules:
        return Decision(room)
    return Decision(replace(room, rules=cmd.rules), (SessionChanged(room.qa, cmd.rules),))


def ban(room: Room, cmd: Ban, policy: RoomPolicy) -> Outcome:
    """Remove the member (epoch bump) and keep their ban keys out for the room's lifetime."""
    actor = find_member(room, cmd.actor_id)
    if isinstance(actor, Refusal):
        return actor
    target = find_member(room, cmd.member_id, who="That member is")
    if isinstance(target, Refusal):
        return target
    if not may_act_on(room, actor, target):
        return forbidden("Your role cannot remove that member.")
    keys = frozenset(k for k in cmd.keys if k)
    if len(room.bans | keys) > policy.max_bans:
        keys = frozenset()  # the list is full: still remove, the member id alone is not kept
    removed = depart(room, cmd.member_id, LeaveReason.removed, cmd.now)
    assert removed.room is not None
    return Decision(replace(removed.room, bans=room.bans | keys), removed.events)


def add_ban_key(room: Room, cmd: AddBanKey, policy: RoomPolicy) -> Outcome:
    """Keep one more key out of the room (within the bound of the ban list); nobody is told."""
    if not cmd.key or cmd.key in room.bans or len(room.bans) >= policy.max_bans:
        return Decision(room)
    return Decision(replace(room, bans=room.bans | {cmd.key}))


def _put_flag(room: Room, flag: Flag, policy: RoomPolicy) -> tuple[Flag, ...]:
    others = tuple(f for f in room.flags if f.digest != flag.digest)
    return (*others, flag)[-policy.max_flags :]


def report(room: Room, cmd: Report, policy: RoomPolicy) -> Outcome:
    """Count a member's report once; the threshold of distinct reporters hides the message."""
    member = find_member(room, cmd.actor_id)
    if isinstance(member, Refusal):
        return member
    flag = room.flag(cmd.digest) or Flag(cmd.digest, frozenset())
    if cmd.actor_id in flag.reporters:
        return Decision(room)
    reporters = flag.reporters | {cmd.actor_id}
    groups = flag.groups | {cmd.group or f"member:{cmd.actor_id}"}
    hidden = flag.hidden or len(groups) >= policy.report_hide_threshold
    new = replace(flag, reporters=reporters, hidden=hidden, groups=groups)
    # Members hear of a report only when it hides the message; the count stays with the staff.
    events = (MessageReported(cmd.digest, len(reporters), True),) if hidden != flag.hidden else ()
    return Decision(replace(room, flags=_put_flag(room, new, policy)), events)


def review(room: Room, cmd: Review, policy: RoomPolicy) -> Outcome:
    """A host or moderator hides a message or restores it after review."""
    refusal = _staff(room, cmd.actor_id, "review reports")
    if refusal is not None:
        return refusal
    flag = room.flag(cmd.digest) or Flag(cmd.digest, frozenset())
    if flag.hidden == cmd.hidden and room.flag(cmd.digest) is not None:
        return Decision(room)
    new = replace(flag, hidden=cmd.hidden)
    event = MessageReported(cmd.digest, len(flag.reporters), cmd.hidden)
    return Decision(replace(room, flags=_put_flag(room, new, policy)), (event,))


def set_pin(room: Room, cmd: SetPin, policy: RoomPolicy) -> Outcome:
    """Keep a sequenced message as the pin later joiners receive; the newest pin wins.

    No event: members learn of the pin from the `msg` push itself, which carries the pin mark.
    """
    refusal = _staff(room, cmd.actor_id, "pin a message")
    if refusal is not None:
        return refusal
    if not 0 < len(cmd.push) <= policy.max_pin_bytes:
        return refuse(RefusalCode.invalid_pin)
    if room.pinned is not None and room.pinned.seq >= cmd.seq:
        return Decision(room)
    return Decision(replace(room, pinned=Pin(cmd.seq, cmd.actor_id, cmd.push)))


def clear_pin(room: Room, cmd: ClearPin) -> Outcome:
    """Unpin (host or moderator); unpinning nothing changes nothing."""
    refusal = _staff(room, cmd.actor_id, "unpin a message")
    if refusal is not None:
        return refusal
    if room.pinned is None:
        return Decision(room)
    return Decision(replace(room, pinned=None), (PinCleared(cmd.actor_id),))
