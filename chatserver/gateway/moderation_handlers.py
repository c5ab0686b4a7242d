"""Therapist sign-in, sessions with a lobby, host and moderator controls, reports and Q&A.

Every rule is decided by the rooms core (`rooms.sessions`, `rooms.moderation`); this module checks
what only the shell can (credentials, signatures, franking stamps, addresses), applies commands
through the room service (so every node sees the result on the ordered room bus), and sends the
directed pushes that only a room's staff or one waiter may see. See docs/moderation.md.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from chatserver import abuse, credentials, e2ee
from chatserver.credentials import Credential, CredentialError
from chatserver.e2ee.roles import role_signer, verify_role
from chatserver.gateway import bans, charters, seat_proofs
from chatserver.gateway.state import Connection, Seat
from chatserver.node import Node
from chatserver.ports import BusUnavailable
from chatserver.protocol import (
    ErrorCode,
    LobbyAdmit,
    LobbyDecline,
    LobbyKnock,
    LobbyList,
    MemberMute,
    MemberRemove,
    MemberRole,
    MemberUnmute,
    ProtocolError,
    Push,
    QaAsk,
    ReportReview,
    ReportSend,
    RoomEnd,
    RoomSettings,
    SessionCreate,
    TherapistChallenge,
    TherapistSignin,
    ok,
    with_rules,
)
from chatserver.wire import b64id, member_view, room_view, unb64id
from rooms import (
    Admit,
    Ban,
    Command,
    CreateRoom,
    Decline,
    Disconnect,
    End,
    Knock,
    Lock,
    Mute,
    Refusal,
    Remove,
    Report,
    Review,
    Role,
    Room,
    RoomKind,
    SetDuration,
    SetPaused,
    SetQA,
    SetRole,
    SetRules,
    SetSlowMode,
    Unlock,
    Unmute,
    Visibility,
    Waiter,
    decide,
)


def rate_limit(wait: float, what: str) -> None:
    if wait > 0:
        raise ProtocolError(ErrorCode.RATE_LIMITED, f"Too many {what}; slow down.", wait)


def seat_of(conn: Connection, room_id: str) -> Seat:
    seat = conn.seats.get(room_id)
    if seat is None:
        raise ProtocolError(ErrorCode.NOT_IN_ROOM, "Not a member of this room.")
    return seat


_CRED_ERRORS = {
    "malformed": ErrorCode.CREDENTIAL_MALFORMED,
    "tampered": ErrorCode.CREDENTIAL_TAMPERED,
    "expired": ErrorCode.CREDENTIAL_EXPIRED,
    "revoked": ErrorCode.CREDENTIAL_REVOKED,
}

# --- credentials ----------------------------------------------------------------------------

_revocation_files: dict[str, credentials.RevocationFile] = {}


def revocation_file(node: Node) -> credentials.RevocationFile:
    """The local revocation file next to the server key (the embedded, single-node list)."""
    from chatserver.app import key_path

    path = key_path(node.settings).with_name("revoked")
    found = _revocation_files.get(str(path))
    if found is None:
        found = _revocation_files[str(path)] = credentials.RevocationFile(path)
    return found


async def is_revoked(node: Node, cred_id: str) -> bool:
    if revocation_file(node).contains(cred_id):
        return True
    return await node.denylist.contains(credentials.REVOKED, cred_id, node.clock.now())


async def check_credential(node: Node, cert: bytes) -> Credential:
    """Verify a certificate now: signature, expiry, then the shared revocation list."""
    assert node.server_key is not None
    try:
        cred = credentials.verify_cert(node.server_key.public, cert, node.clock.now())
    except CredentialError as exc:
        raise ProtocolError(_CRED_ERRORS[exc.code], exc.message + ".") from None
    if await is_revoked(node, cred.cred_id):
        raise ProtocolError(ErrorCode.CREDENTIAL_REVOKED, "The credential was revoked.")
    return cred


async def therapist_challenge(
    node: Node, conn: Connection, p: TherapistChallenge
) -> dict[str, Any]:
    rate_limit(conn.control_bucket.take(node.clock.now()), "requests")
    conn.signin_nonce = secrets.token_bytes(32)
    return ok(nonce=conn.signin_nonce)


async def therapist_signin(node: Node, conn: Connection, p: TherapistSignin) -> dict[str, Any]:
    rate_limit(conn.control_bucket.take(node.clock.now(), cost=2), "sign-ins")
    nonce, conn.signin_nonce = conn.signin_nonce, None
    if nonce is None:
        raise ProtocolError(ErrorCode.NO_CHALLENGE, "Ask for a challenge (therapist.challenge).")
    cred = await check_credential(node, p.cert)
    if not credentials.verify_signin(cred, nonce, p.sig):
        raise ProtocolError(
            ErrorCode.CREDENTIAL_TAMPERED, "The proof of possession does not verify."
        )
    conn.therapist = cred
    return ok(therapist=_therapist_view(cred))


def _therapist_view(cred: Credential) -> dict[str, Any]:
    return {"id": cred.cred_id, "name": cred.name, "expires_at": cred.expires_at}


async def signed_in(node: Node, conn: Connection) -> Credential:
    """The connection's therapist, re-checked (it may have expired or been revoked since)."""
    if conn.therapist is None:
        raise ProtocolError(ErrorCode.NOT_SIGNED_IN, "Sign in with a therapist credential.")
    cred = await check_credential(node, conn.therapist.cert)
    conn.therapist = cred
    return cred


# --- sessions and the lobby -----------------------------------------------------------------


async def session_create(node: Node, conn: Connection, p: SessionCreate) -> dict[str, Any]:
    rate_limit(conn.create_bucket.take(node.clock.now()), "rooms created")
    cred = await signed_in(node, conn)
    assert node.server_key is not None
    if p.room_id is None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "A session names its room_id (random 16 bytes).")
    if p.listed == (p.join_key is not None):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "A private session needs join_key; a listed one must not."
        )
    now = node.clock.now()
    try:
        badge = credentials.verify_badge(
            node.server_key.public, p.badge, unb64id(p.room_id), unb64id(p.host_id), now
        )
    except CredentialError:
        raise ProtocolError(ErrorCode.BAD_BADGE, "The badge does not verify.") from None
    if badge.cred_id != cred.cred_id:
        raise ProtocolError(ErrorCode.BAD_BADGE, "The badge is for another credential.")
    if await node.store.load(p.room_id) is not None:
        raise ProtocolError(ErrorCode.ROOM_EXISTS, "A room with this id already exists.")
    charters.require(p.room_id, p.join_key, p.charter, p.host_id, p.lobby)
    command = CreateRoom(
        room_id=p.room_id,
        kind=RoomKind.session,
        visibility=Visibility.listed if p.listed else Visibility.unlisted,
        topic=p.topic,
        title_ct=p.title,
        join_key=p.join_key,
        capacity=p.capacity,
        now=now,
        host_id=p.host_id,
        lobby=p.lobby,
        starts_at=p.starts_at,
        duration_s=p.duration_s,
        qa=p.qa,
        rules=p.rules,
        badge=p.badge,
        charter=p.charter,
    )
    decision, _ = await node.service.apply(p.room_id, command)
    assert decision.room is not None
    return ok(room=room_view(decision.room))


def lobby_view(room: Room) -> dict[str, Any]:
    """What a waiter may see: never members, keys or messages."""
    return {
        "room_id": room.room_id,
        "kind": str(room.kind),
        "topic": room.topic,
        "title": room.title_ct,
        "host_id": room.host_id,
        "badge": room.badge,
        "charter": room.charter,
        "starts_at": room.starts_at,
        "duration_s": room.duration_s,
        "rules": room.rules,
        "qa": room.qa,
    }


def waiter_view(waiter: Waiter, status: str) -> dict[str, Any]:
    return {
        "member_id": waiter.member_id,
        "pseudonym": waiter.pseudonym,
        "card": waiter.card,
        "knocked_at": waiter.knocked_at,
        "status": status,
    }


async def before_join(
    node: Node, conn: Connection, room: Room, member_id: str, proof_ok: bool | None
) -> None:
    """Called by room.join before the seat is taken: room bans, and the lobby's front door."""
    if room.visibility is Visibility.unlisted and not proof_ok:
        return  # the core refuses first, telling a caller without the link nothing else
    if room.member(member_id) is not None:
        # Checked before the lobby, so a reloaded page learns its seat is still held (and can
        # resume it) rather than being told to knock.
        raise ProtocolError("already_member", "This member is already in the room.")
    if bans.is_banned(node, conn, room, member_id):
        raise ProtocolError("banned", "You cannot enter this room.")
    # Someone a host admitted before comes back directly (the core checks it is the same card).
    if room.lobby and member_id != room.host_id and room.readmitted(member_id) is None:
        waiter = room.waiter(member_id)
        if waiter is None or waiter.admission is None:
            raise ProtocolError(
                "lobby_required", "This session has a lobby: knock and wait to be admitted."
            )
        _drop_waiting(node, conn, room.room_id, member_id)


def _drop_waiting(node: Node, conn: Connection | None, room_id: str, member_id: str) -> None:
    seat = node.registry.seats.get((room_id, member_id))
    if seat is not None and node.registry.rooms.get(room_id, set()).isdisjoint({member_id}):
        del node.registry.seats[(room_id, member_id)]
    if conn is not None:
        conn.waiting.pop(room_id, None)


async def lobby_knock(node: Node, conn: Connection, p: LobbyKnock) -> dict[str, Any]:
    rate_limit(conn.join_bucket.take(node.clock.now()), "joins")
    if p.room_id in conn.seats or p.room_id in conn.waiting:
        raise ProtocolError("already_member", "This connection is already there.")
    current = await node.store.load(p.room_id)
    if current is None:
        raise ProtocolError(ErrorCode.ROOM_NOT_FOUND, "No such room.")
    room_key = unb64id(p.room_id)
    nonce = seat_proofs.take_nonce(conn, p.room_id, node.clock.now())
    try:
        card = e2ee.parse_card(p.card, room_key)
    except e2ee.E2EEError:
        raise ProtocolError(ErrorCode.BAD_CARD, "The key card is invalid.") from None
    seat_proofs.require_seat_proof(card, room_key, nonce, p.seat_proof)
    proof_ok = seat_proofs.link_proof(current.room, room_key, nonce, card.member_id, p.proof)
    member_id = b64id(card.member_id)
    banned = bans.is_banned(node, conn, current.room, member_id)
    # Reachable for directed pushes (admitted, declined) but not subscribed to the room.
    seat = Seat(p.room_id, member_id, card, sid=conn.sid)
    node.registry.seats[(p.room_id, member_id)] = seat
    conn.waiting[p.room_id] = seat
    try:
        decision, _ = await node.service.apply(
            p.room_id,
            Knock(
                member_id=member_id,
                card=p.card,
                nickname=p.nickname,
                pseudonym_entropy=secrets.randbits(32),
                proof_ok=proof_ok,
                rules_accepted=p.accept_rules,
                banned=banned,
                now=node.clock.now(),
            ),
        )
    except ProtocolError as exc:
        _drop_waiting(node, conn, p.room_id, member_id)
        raise with_rules(exc, current.room.rules) from None
    room = decision.room
    assert room is not None
    waiter = room.waiter(member_id)
    assert waiter is not None
    deadline = node.clock.now() + node.settings.presence_ttl_s
    await node.presence.touch(p.room_id, member_id, node.node_id, deadline)
    await tell_staff(node, room, Push.LOBBY_WAITING, {"waiter": waiter_view(waiter, "waiting")})
    return ok(lobby=lobby_view(room), member_id=member_id, pseudonym=waiter.pseudonym)


async def tell_staff(node: Node, room: Room, push: Push, fields: dict[str, Any]) -> None:
    """A directed push to each host and moderator of the room (each on its own node)."""
    event = {"t": push, "room_id": room.room_id, **fields}
    for member in room.members:
        if member.role is not Role.member:
            await node.bus.send_direct(room.room_id, member.member_id, event)


def staff_room(room: Room, member_id: str) -> Room:
    member = room.member(member_id)
    if member is None or member.role is Role.member:
        raise ProtocolError(ErrorCode.NOT_STAFF, "Only the room's hosts and moderators may.")
    return room


async def _room(node: Node, room_id: str) -> Room:
    current = await node.store.load(room_id)
    if current is None:
        raise ProtocolError(ErrorCode.ROOM_NOT_FOUND, "No such room.")
    return current.room


async def lobby_list(node: Node, conn: Connection, p: LobbyList) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now()), "requests")
    room = staff_room(await _room(node, p.room_id), seat.member_id)
    return ok(
        waiting=[
            waiter_view(w, "admitted" if w.admission is not None else "waiting")
            for w in room.waiting
        ]
    )


async def lobby_admit(node: Node, conn: Connection, p: LobbyAdmit) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now(), cost=0.25), "admissions")
    room = await _room(node, p.room_id)
    waiter = room.waiter(p.member_id)
    if waiter is not None and not credentials.verify_admission(
        seat.card.ed_public, p.admission, unb64id(p.room_id), waiter.card
    ):
        raise ProtocolError(ErrorCode.BAD_ADMISSION, "The admission does not verify.")
    decision, seq = await node.service.apply(
        p.room_id, Admit(seat.member_id, p.member_id, p.admission, node.clock.now())
    )
    after = decision.room
    assert after is not None
    admitted = after.waiter(p.member_id)
    if admitted is not None:
        await node.bus.send_direct(
            p.room_id, p.member_id, {"t": Push.LOBBY_ADMITTED, "room_id": p.room_id}
        )
        await tell_staff(
            node, after, Push.LOBBY_WAITING, {"waiter": waiter_view(admitted, "admitted")}
        )
    return ok(seq=seq)


async def lobby_decline(node: Node, conn: Connection, p: LobbyDecline) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now(), cost=0.25), "requests")
    before = await _room(node, p.room_id)
    waiter = before.waiter(p.member_id)
    decision, seq = await node.service.apply(
        p.room_id, Decline(seat.member_id, p.member_id, node.clock.now())
    )
    assert decision.room is not None
    if waiter is not None:
        await node.bus.send_direct(
            p.room_id,
            p.member_id,
            {"t": Push.LOBBY_DECLINED, "room_id": p.room_id, "reason": "declined"},
        )
        await tell_staff(
            node, decision.room, Push.LOBBY_WAITING, {"waiter": waiter_view(waiter, "declined")}
        )
    return ok(seq=seq)


def after_direct(node: Node, room_id: str, member_id: str, event: dict[str, Any]) -> None:
    """A waiter's node forgets the waiter once told it was declined (or the room ended)."""
    if event.get("t") == Push.LOBBY_DECLINED:
        seat = node.registry.seats.get((room_id, member_id))
        conn = node.registry.connections.get(seat.sid) if seat is not None else None
        _drop_waiting(node, conn, room_id, member_id)


async def on_disconnect(node: Node, conn: Connection) -> None:
    """A waiter whose connection closed leaves the lobby at once (waiters do not resume)."""
    for room_id, seat in list(conn.waiting.items()):
        _drop_waiting(node, conn, room_id, seat.member_id)
        try:
            await node.presence.remove(room_id, seat.member_id)
            decision, _ = await node.service.apply(
                room_id, Disconnect(member_id=seat.member_id, now=node.clock.now())
            )
        except (ProtocolError, BusUnavailable):
            continue
        waiter = (
            decision.events[0].waiter
            if decision.events and hasattr(decision.events[0], "waiter")
            else None
        )
        if decision.room is not None and waiter is not None:
            await tell_staff(
                node, decision.room, Push.LOBBY_WAITING, {"waiter": waiter_view(waiter, "left")}
            )


# --- host and moderator controls ------------------------------------------------------------


async def _control(node: Node, conn: Connection, room_id: str, *commands: Command) -> int:
    seq = 0
    for command in commands:
        _, seq = await node.service.apply(room_id, command)
    return seq


def _actor(node: Node, conn: Connection, room_id: str) -> str:
    seat = seat_of(conn, room_id)
    rate_limit(conn.control_bucket.take(node.clock.now()), "moderation requests")
    return seat.member_id


async def member_mute(node: Node, conn: Connection, p: MemberMute) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    seq = await _control(
        node, conn, p.room_id, Mute(actor, p.member_id, p.duration_s, node.clock.now())
    )
    return ok(seq=seq)


async def member_unmute(node: Node, conn: Connection, p: MemberUnmute) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    seq = await _control(node, conn, p.room_id, Unmute(actor, p.member_id, node.clock.now()))
    return ok(seq=seq)


async def member_remove(node: Node, conn: Connection, p: MemberRemove) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    now = node.clock.now()
    if not p.ban:
        return ok(seq=await _control(node, conn, p.room_id, Remove(actor, p.member_id, now)))
    keys = {bans.member_key(p.member_id)}
    # The address key, if this node holds the member's connection; else the node that does adds
    # it when the departure reaches it (`bans.after_member_left`).
    held = bans.held_ban_key(node, p.room_id, p.member_id)
    if held is not None:
        keys.add(held)
    seq = await _control(node, conn, p.room_id, Ban(actor, p.member_id, frozenset(keys), now))
    return ok(seq=seq)


def _seat_key(room_id: str, member_id: str) -> str:
    return hashlib.sha256(f"{room_id}|{member_id}".encode()).hexdigest()[:32]


async def member_role(node: Node, conn: Connection, p: MemberRole) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    seat = seat_of(conn, p.room_id)
    signer = role_signer(p.role_proof)
    if (
        signer is None
        or b64id(signer) != actor
        or not verify_role(
            seat.card.ed_public, unb64id(p.room_id), unb64id(p.member_id), p.role, p.role_proof
        )
    ):
        raise ProtocolError(ErrorCode.BAD_ROLE_PROOF, "The role statement does not verify.")
    command = SetRole(actor, p.member_id, Role(p.role), node.clock.now(), p.role_proof)
    seq = await _control(node, conn, p.room_id, command)
    return ok(seq=seq)


async def room_settings(node: Node, conn: Connection, p: RoomSettings) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    now = node.clock.now()
    commands: list[Command] = []
    if p.locked is not None:
        commands.append(Lock(actor, now) if p.locked else Unlock(actor, now))
    if p.paused is not None:
        commands.append(SetPaused(actor, p.paused, now))
    if p.slow_mode_s is not None:
        commands.append(SetSlowMode(actor, p.slow_mode_s, now))
    if p.qa is not None:
        commands.append(SetQA(actor, p.qa, now))
    if p.rules is not None:
        commands.append(SetRules(actor, p.rules or None, now))
    if p.duration_s is not None:
        commands.append(SetDuration(actor, p.duration_s, now))
    seq = await _control(node, conn, p.room_id, *commands)
    room = await _room(node, p.room_id)
    return ok(room=room_view(room), seq=seq)


async def room_end(node: Node, conn: Connection, p: RoomEnd) -> dict[str, Any]:
    actor = _actor(node, conn, p.room_id)
    before = await _room(node, p.room_id)
    dry_run = decide(before, End(actor, node.clock.now()), node.policy)
    if isinstance(dry_run, Refusal):  # refuse before any waiter is told
        raise ProtocolError(str(dry_run.code), dry_run.message)
    await tell_waiters_ended(node, before)
    _, seq = await node.service.apply(p.room_id, End(actor, node.clock.now()))
    await purge(node, before)
    return ok(seq=seq)


async def tell_waiters_ended(node: Node, room: Room) -> None:
    """Nobody is left waiting in the lobby of a room that is over."""
    for waiter in room.waiting:
        event = {"t": Push.LOBBY_DECLINED, "room_id": room.room_id, "reason": "ended"}
        await node.bus.send_direct(room.room_id, waiter.member_id, event)


async def purge(node: Node, room: Room) -> None:
    """After the end, nothing of the room stays in shared state: the store dropped its state and
    the bus its sequence, buffer, chains, holders and mailboxes; here go the seats' presence
    entries."""
    for member_id in [m.member_id for m in room.members] + [w.member_id for w in room.waiting]:
        await node.presence.remove(room.room_id, member_id)


# --- slow mode ------------------------------------------------------------------------------


async def enforce_slow_mode(node: Node, room: Room, member_id: str, now: float) -> None:
    """One message per `slow_mode_s` per member, cluster-wide (the shared rate limiter)."""
    if room.slow_mode_s <= 0:
        return
    member = room.member(member_id)
    if member is None or member.role is not Role.member:
        return
    key = "slow:" + _seat_key(room.room_id, member_id) + f":{room.slow_mode_s}"
    wait = await node.limiter.hit(key, 1.0 / room.slow_mode_s, 1, now)
    if wait > 0:
        raise ProtocolError(ErrorCode.RATE_LIMITED, "Slow mode is on; wait a moment.", wait)


# --- reports --------------------------------------------------------------------------------


def report_reasons(node: Node) -> list[str]:
    return [r.strip() for r in node.settings.report_reasons.split(",") if r.strip()]


async def report_send(node: Node, conn: Connection, p: ReportSend) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now(), cost=2), "reports")
    if p.reason not in report_reasons(node):
        raise ProtocolError(ErrorCode.UNKNOWN_REASON, "Pick a reason from the server's list.")
    try:
        claimed = e2ee.parse_envelope(p.env)
    except e2ee.E2EEError:
        raise ProtocolError(ErrorCode.BAD_REPORT, "The report does not verify.") from None
    if claimed.room_id != unb64id(p.room_id):
        raise ProtocolError(ErrorCode.WRONG_ROOM, "The reported message is from another room.")
    current = await _room(node, p.room_id)
    accused = current.member(b64id(claimed.sender_id))
    if accused is None:
        raise ProtocolError(
            ErrorCode.BAD_REPORT, "The sender has left: the message cannot be verified."
        )
    try:
        card = e2ee.parse_card(accused.card, claimed.room_id)
        e2ee.verify_report(node.stamp_key, p.env, p.ts, p.stamp, p.franking_key, p.body, card)
    except e2ee.E2EEError:
        raise ProtocolError(ErrorCode.BAD_REPORT, "The report does not verify.") from None
    digest = hashlib.sha256(p.env).digest()
    # One person with several seats reports as one: reporters count by address group.
    group = abuse.guard(node).report_group(conn.sid, p.room_id)
    decision, _ = await node.service.apply(
        p.room_id, Report(seat.member_id, digest, node.clock.now(), group=group)
    )
    room = decision.room
    assert room is not None
    flag = room.flag(digest)
    sender_id = b64id(claimed.sender_id)
    sender = room.member(sender_id)
    report = {
        "digest": digest,
        "reason": p.reason,
        "sender_id": sender_id,
        "sender_pseudonym": sender.pseudonym if sender is not None else None,
        "body": p.body,
        "ts": p.ts,
        "reporters": len(flag.reporters) if flag else 1,
        "reporter_groups": len(flag.groups) if flag else 1,
        "hidden": bool(flag and flag.hidden),
    }
    await tell_staff(node, room, Push.REPORT, {"report": report})
    return ok(reporters=report["reporters"], hidden=report["hidden"])


async def report_review(node: Node, conn: Connection, p: ReportReview) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.control_bucket.take(node.clock.now()), "reviews")
    _, seq = await node.service.apply(
        p.room_id, Review(seat.member_id, p.digest, p.hide, node.clock.now())
    )
    return ok(seq=seq)


# --- Q&A ------------------------------------------------------------------------------------


async def qa_ask(node: Node, conn: Connection, p: QaAsk) -> dict[str, Any]:
    seat = seat_of(conn, p.room_id)
    rate_limit(conn.msg_bucket.take(node.clock.now()), "questions")
    room = await _room(node, p.room_id)
    if room.member(seat.member_id) is None:
        raise ProtocolError(ErrorCode.NOT_IN_ROOM, "Not a member of this room.")
    host = room.member(p.to)
    if host is None or host.role is not Role.host:
        raise ProtocolError(ErrorCode.UNKNOWN_RECIPIENT, "Questions go to a host of the room.")
    event = {
        "t": Push.QA_QUESTION,
        "room_id": p.room_id,
        "from": seat.member_id,
        "sealed": p.sealed,
    }
    await node.bus.send_direct(p.room_id, p.to, event)
    return ok()


def member_views(room: Room) -> list[dict[str, Any]]:
    return [member_view(m) for m in room.members]
