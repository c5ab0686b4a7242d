"""How rooms begin and end: creation checks, expiry, and ending by a host.

Rooms are deliberately short-lived: a hard `max_lifetime_s` and an
`empty_grace_s` after the last member leaves, so the server never keeps
metadata about who met where for longer than a conversation lasts.
"""

from __future__ import annotations

from rooms.commands import CreateRoom, End, Tick
from rooms.errors import Refusal, RefusalCode, refuse
from rooms.events import EndReason, RoomCreated, RoomEnded
from rooms.guards import find_member, forbidden, may_end
from rooms.model import Room, RoomKind, RoomPolicy, RoomState, Visibility
from rooms.moderation import session_end
from rooms.outcome import Decision, Outcome
from rooms.text import has_letter_or_digit, is_safe_text, normalise


def validate_topic(raw: str, policy: RoomPolicy) -> str | Refusal:
    """The normalised topic, or `invalid_topic` (without echoing it)."""
    topic = normalise(raw)
    if not 1 <= len(topic) <= policy.max_topic_chars:
        return refuse(
            RefusalCode.invalid_topic,
            f"Topics must be 1 to {policy.max_topic_chars} characters long.",
        )
    if not is_safe_text(topic) or not has_letter_or_digit(topic):
        return refuse(
            RefusalCode.invalid_topic,
            "Topics need a letter or digit and no invisible or control characters.",
        )
    return topic


def _capacity(requested: int | None, policy: RoomPolicy) -> int | Refusal:
    capacity = policy.default_capacity if requested is None else requested
    if not policy.min_capacity <= capacity <= policy.max_capacity:
        return refuse(
            RefusalCode.invalid_capacity,
            f"Capacity must be between {policy.min_capacity} and {policy.max_capacity}.",
        )
    return capacity


def _join_key_refusal(cmd: CreateRoom, policy: RoomPolicy) -> Refusal | None:
    # Listed rooms are joined by id alone, so a key there would be meaningless
    # state; unlisted rooms are only as private as their key is present.
    if cmd.visibility is Visibility.listed:
        return None if cmd.join_key is None else refuse(RefusalCode.invalid_join_key)
    if cmd.join_key is None or not 0 < len(cmd.join_key) <= policy.max_join_key_bytes:
        return refuse(RefusalCode.invalid_join_key)
    return None


def _session_refusal(cmd: CreateRoom, policy: RoomPolicy) -> Refusal | None:
    if cmd.lobby and cmd.host_id is None:
        return refuse(RefusalCode.host_required, "A room with a lobby needs a host seat.")
    latest = cmd.now + policy.max_lifetime_s
    if cmd.starts_at is not None and not cmd.now - 3600 <= cmd.starts_at < latest:
        return refuse(RefusalCode.invalid_schedule)
    if cmd.duration_s is not None and not 0 < cmd.duration_s <= policy.max_lifetime_s:
        return refuse(RefusalCode.invalid_schedule)
    if cmd.rules is not None and not 0 < len(cmd.rules) <= policy.max_rules_bytes:
        return refuse(RefusalCode.invalid_rules)
    if cmd.badge is not None and not 0 < len(cmd.badge) <= policy.max_badge_bytes:
        return refuse(RefusalCode.invalid_rules)
    if not 0 <= cmd.disappear_after_s <= policy.max_disappear_after_s:
        return refuse(RefusalCode.invalid_duration)
    return None


def create_room(room: Room | None, cmd: CreateRoom, policy: RoomPolicy) -> Outcome:
    """Validate a new room; it starts open, at epoch 1, empty since `now`."""
    if room is not None:
        return refuse(RefusalCode.room_exists)
    if cmd.kind is RoomKind.session and cmd.host_id is None:
        return refuse(RefusalCode.host_required)
    capacity = _capacity(cmd.capacity, policy)
    if isinstance(capacity, Refusal):
        return capacity
    topic: str | None = None
    if cmd.topic is not None:
        checked = validate_topic(cmd.topic, policy)
        if isinstance(checked, Refusal):
            return checked
        topic = checked
    elif cmd.visibility is Visibility.listed:
        return refuse(RefusalCode.invalid_topic, "Listed rooms need a topic.")
    key_refusal = _join_key_refusal(cmd, policy)
    if key_refusal is not None:
        return key_refusal
    if cmd.title_ct is not None and len(cmd.title_ct) > policy.max_title_ct_bytes:
        return refuse(RefusalCode.invalid_title)
    session_refusal = _session_refusal(cmd, policy)
    if session_refusal is not None:
        return session_refusal
    expires_at = cmd.now + policy.max_lifetime_s
    ends_at: float | None = None
    if cmd.duration_s is not None:
        start = cmd.now if cmd.starts_at is None else cmd.starts_at
        ends_at = min(session_end(start, cmd.duration_s, policy), expires_at)
    new = Room(
        room_id=cmd.room_id,
        kind=cmd.kind,
        visibility=cmd.visibility,
        topic=topic,
        title_ct=cmd.title_ct,
        join_key=cmd.join_key,
        state=RoomState.open,
        epoch=1,
        capacity=capacity,
        created_at=cmd.now,
        expires_at=expires_at,
        ends_at=ends_at,
        # A room nobody ever joins must still disappear after the grace.
        empty_since=cmd.now,
        host_id=cmd.host_id,
        lobby=cmd.lobby,
        starts_at=cmd.starts_at,
        duration_s=cmd.duration_s,
        qa=cmd.qa,
        rules=cmd.rules,
        badge=cmd.badge,
        charter=cmd.charter,
        disappear_after_s=cmd.disappear_after_s,
    )
    return Decision(new, (RoomCreated(new),))


def end_reason(room: Room, now: float, policy: RoomPolicy) -> EndReason | None:
    """Why the room is over at `now`, or None if it lives on. Lifetime wins over empty."""
    if now >= room.expires_at:
        return EndReason.lifetime
    if room.ends_at is not None and now >= room.ends_at:
        return EndReason.time_up
    # Same arithmetic as `Room.next_expiry`, so the shell's timer and Tick agree exactly.
    empty_since = None if room.members else room.empty_since
    if empty_since is not None and now >= empty_since + policy.empty_grace_s:
        return EndReason.empty
    return None


def tick(room: Room, cmd: Tick, policy: RoomPolicy) -> Outcome:
    """End the room if it is due; otherwise nothing changes."""
    if room.state is RoomState.ended:
        return Decision(None)  # already over; nothing new to announce
    reason = end_reason(room, cmd.now, policy)
    if reason is None:
        return Decision(room)
    return Decision(None, (RoomEnded(reason),))


def end(room: Room, cmd: End) -> Outcome:
    """A host (or a peer room's moderator) ends the room for everyone."""
    actor = find_member(room, cmd.actor_id)
    if isinstance(actor, Refusal):
        return actor
    if not may_end(room, actor):
        return forbidden("Only a host can end this room.")
    return Decision(None, (RoomEnded(EndReason.ended_by_host),))
