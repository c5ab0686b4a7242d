"""Who is in the room: joining, leaving, removal, renaming, and the send check.

Epoch rule: every departure (leave, removal, disconnect, heartbeat expiry) bumps
the epoch by exactly one, because the departed member holds the current sender
keys and everyone must rekey before sending again. Joining does not bump it:
newcomers are simply handed the current chains, and forward secrecy against
newcomers comes from the chains having ratcheted past older messages.
"""

from __future__ import annotations

from dataclasses import replace

from rooms.commands import CheckSend, Disconnect, Join, Leave, Remove, Rename
from rooms.errors import Refusal, RefusalCode, refuse
from rooms.events import (
    LeaveReason,
    LobbyChanged,
    LobbyStatus,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
)
from rooms.guards import find_member, forbidden, is_staff, may_act_on
from rooms.model import Member, Role, Room, RoomKind, RoomPolicy, RoomState, Visibility, Waiter
from rooms.nicknames import lookalike_key, taken_names, validate_nickname
from rooms.outcome import Decision, Outcome
from rooms.pseudonyms import assign


def _admission_refusal(room: Room, cmd: Join) -> Refusal | None:
    # Proof comes first so a caller without the link learns nothing else about
    # a private room: not whether it is locked, full, or waiting for its host.
    if room.visibility is Visibility.unlisted:
        if cmd.proof_ok is None:
            return refuse(RefusalCode.join_proof_required)
        if not cmd.proof_ok:
            return refuse(RefusalCode.bad_proof)
    if room.member(cmd.member_id) is not None:
        return refuse(RefusalCode.already_member)
    is_owner = cmd.member_id == room.host_id
    returning = room.readmitted(cmd.member_id)
    if returning is not None and returning.card != cmd.card:
        returning = None
    admitted = room.waiter(cmd.member_id)
    if admitted is not None and (admitted.admission is None or admitted.card != cmd.card):
        admitted = None
    if room.lobby and not is_owner and returning is None and admitted is None:
        return refuse(RefusalCode.lobby_required)
    # Ground rules are accepted before entering: at the knock (admitted waiters, returning
    # members), or here. The owner set them.
    entering_fresh = admitted is None and returning is None and not is_owner
    if room.rules is not None and entering_fresh and not cmd.rules_accepted:
        return refuse(RefusalCode.rules_not_accepted)
    # A lock keeps newcomers out; someone the hosts admitted earlier is not new.
    if room.state is RoomState.locked and not is_owner and returning is None:
        return refuse(RefusalCode.room_locked)
    if room.kind is RoomKind.session and not is_owner and not room.host_present():
        return refuse(RefusalCode.host_absent)
    # Keep one seat for an absent owner, so a full room can never lock out its host.
    owner_away = room.host_id is not None and room.member(room.host_id) is None
    seats = room.capacity - (1 if owner_away and not is_owner else 0)
    if len(room.members) >= seats:
        return refuse(RefusalCode.room_full)
    return None


def join(room: Room, cmd: Join, policy: RoomPolicy) -> Outcome:
    """Admit a member under a valid nickname or an assigned pseudonym.

    The member joining with the room's `host_id` becomes host; everyone else
    joins as a plain member.
    """
    refusal = _admission_refusal(room, cmd)
    if refusal is not None:
        return refusal
    taken = taken_names(room.members)
    waiter = room.waiter(cmd.member_id) or room.readmitted(cmd.member_id)
    nickname = cmd.nickname
    if waiter is not None:
        nickname = waiter.pseudonym  # the name the hosts admitted
        if validate_nickname(nickname, taken) != nickname:
            nickname = None
    if nickname is None:
        pseudonym = assign(cmd.pseudonym_entropy, taken)
    else:
        checked = validate_nickname(
            nickname,
            taken,
            min_chars=policy.min_nickname_chars,
            max_chars=policy.max_nickname_chars,
        )
        if isinstance(checked, Refusal):
            return checked
        pseudonym = checked
    member = Member(
        member_id=cmd.member_id,
        pseudonym=pseudonym,
        name_key=lookalike_key(pseudonym),
        role=Role.host if cmd.member_id == room.host_id else Role.member,
        card=cmd.card,
        joined_at=cmd.now,
        token_hash=cmd.token_hash,
        nick_chosen=nickname is not None,
        admission=waiter.admission if waiter is not None else None,
        member_proof=cmd.member_proof,
    )
    new = replace(
        room,
        members=(*room.members, member),
        empty_since=None,
        waiting=tuple(w for w in room.waiting if w is not waiter),
        readmit=tuple(w for w in room.readmit if w is not waiter),
    )
    return Decision(new, (MemberJoined(member),))


def _readmit(room: Room, member: Member, reason: LeaveReason, now: float) -> tuple[Waiter, ...]:
    # Keep a host's admission for someone who left without being removed, so a reloaded page
    # or a dropped phone comes back without queueing again; removal forfeits it.
    kept = tuple(w for w in room.readmit if w.member_id != member.member_id)
    if reason is LeaveReason.removed or member.admission is None:
        return kept
    entry = Waiter(member.member_id, member.card, member.pseudonym, now, member.admission)
    return (*kept, entry)[-room.capacity :]


def depart(room: Room, member_id: str, reason: LeaveReason, now: float) -> Decision:
    """Drop a present member and bump the epoch; an emptied room starts its grace now."""
    leaving = room.member(member_id)
    members = tuple(m for m in room.members if m.member_id != member_id)
    epoch = room.epoch + 1
    new = replace(
        room,
        members=members,
        epoch=epoch,
        empty_since=room.empty_since if members else now,
        readmit=room.readmit if leaving is None else _readmit(room, leaving, reason, now),
    )
    return Decision(new, (MemberLeft(member_id, reason, epoch),))


def _withdraw(room: Room, waiter: Waiter) -> Decision:
    waiting = tuple(w for w in room.waiting if w is not waiter)
    return Decision(replace(room, waiting=waiting), (LobbyChanged(waiter, LobbyStatus.left),))


def leave(room: Room, cmd: Leave) -> Outcome:
    """The member leaves (a waiter leaves the lobby). A departing owner keeps the host seat."""
    waiter = room.waiter(cmd.member_id)
    if waiter is not None:
        return _withdraw(room, waiter)
    member = find_member(room, cmd.member_id)
    if isinstance(member, Refusal):
        return member
    return depart(room, cmd.member_id, LeaveReason.left, cmd.now)


def disconnect(room: Room, cmd: Disconnect) -> Outcome:
    """The connection is gone for good; resuming later means joining again."""
    waiter = room.waiter(cmd.member_id)
    if waiter is not None:
        return _withdraw(room, waiter)
    member = find_member(room, cmd.member_id)
    if isinstance(member, Refusal):
        return member
    reason = LeaveReason.expired if cmd.heartbeat_lapsed else LeaveReason.disconnected
    return depart(room, cmd.member_id, reason, cmd.now)


def remove(room: Room, cmd: Remove) -> Outcome:
    """A moderator removes a member, or a host removes anyone but the owner."""
    actor = find_member(room, cmd.actor_id)
    if isinstance(actor, Refusal):
        return actor
    target = find_member(room, cmd.member_id, who="That member is")
    if isinstance(target, Refusal):
        return target
    if not may_act_on(room, actor, target):
        return forbidden("Your role cannot remove that member.")
    return depart(room, cmd.member_id, LeaveReason.removed, cmd.now)


def rename(room: Room, cmd: Rename, policy: RoomPolicy) -> Outcome:
    """Change one's own nickname; it must be unique and unlike everyone else's."""
    member = find_member(room, cmd.member_id)
    if isinstance(member, Refusal):
        return member
    checked = validate_nickname(
        cmd.nickname,
        taken_names(room.members, but=cmd.member_id),
        min_chars=policy.min_nickname_chars,
        max_chars=policy.max_nickname_chars,
    )
    if isinstance(checked, Refusal):
        return checked
    return update_member(
        room, replace(member, pseudonym=checked, name_key=lookalike_key(checked), nick_chosen=True)
    )


def update_member(room: Room, member: Member) -> Decision:
    """Replace a member in place (join order kept) and announce the change."""
    members = tuple(member if m.member_id == member.member_id else m for m in room.members)
    return Decision(replace(room, members=members), (MemberUpdated(member),))


def check_send(room: Room, cmd: CheckSend) -> Outcome:
    """May this member send an envelope of this epoch now? Never changes the room."""
    member = find_member(room, cmd.member_id)
    if isinstance(member, Refusal):
        return member
    if cmd.epoch != room.epoch:
        return refuse(RefusalCode.stale_epoch)
    if member.is_muted(cmd.now):
        return refuse(RefusalCode.muted, "You are muted in this room.")
    if room.paused and not is_staff(member):
        return refuse(RefusalCode.paused)
    if room.qa and member.role is not Role.host:
        return refuse(RefusalCode.qa_only)
    if cmd.pin and not is_staff(member):
        return forbidden("Only a host or moderator can pin a message.")
    return Decision(room)
