"""Generate tests/vectors/replica.json: push sequences and what a room must show for each.

Both clients turn the room's pushes into what a room shows (ordering, held messages, key shares,
refusals); these fixtures drive the Python client (tests/e2ee/test_replica_fixtures.py) and the
browser client (web/test/replica_fixtures.test.mjs) through the same pushes, and both must give
the same verdict on every one. The format is in docs/e2ee.md, "Client replica fixtures".

Everything derives from fixed seeds with the real e2ee code, and the pushes and views are the
server's own (`chatserver.protocol`), so regenerating gives identical bytes, except the HPKE output
of the SKDs (``cryptography`` takes no fixed ephemeral key): those are recorded, and a rerun
reuses every recorded blob that still opens, with the recipient's key, to exactly the sealed
plaintext it needs (as scripts/gen_vectors.py keeps its SKD blob).

Usage: python scripts/gen_replica_fixtures.py [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatserver.credentials import admission_message  # noqa: E402
from chatserver.e2ee import (  # noqa: E402
    E2EEError,
    Identity,
    derive_room_secret,
    parse_card,
    parse_skd,
    server_stamp,
)
from chatserver.e2ee.chain import advance, chain_step  # noqa: E402
from chatserver.e2ee.charter import make_charter  # noqa: E402
from chatserver.e2ee.constants import SKD_BLOB_LEN, SKD_HEADER_LEN  # noqa: E402
from chatserver.e2ee.envelope import seal_envelope  # noqa: E402
from chatserver.e2ee.payload import Payload  # noqa: E402
from chatserver.e2ee.primitives import hpke_open, hpke_seal, u32  # noqa: E402
from chatserver.e2ee.skd import SkdHeader, assemble_skd, skd_info, skd_plaintext  # noqa: E402
from chatserver.protocol import Push, ok  # noqa: E402
from chatserver.protocol.core_events import event_to_wire  # noqa: E402
from chatserver.protocol.ids import b64id  # noqa: E402
from chatserver.protocol.views import member_view, room_view  # noqa: E402
from rooms import (  # noqa: E402
    EndReason,
    LeaveReason,
    Member,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    Role,
    Room,
    RoomEnded,
    RoomKind,
    RoomState,
    Visibility,
)

OUT = ROOT / "tests" / "vectors" / "replica.json"
BODY_PROFILE = ROOT / "tests" / "vectors" / "body_profile.json"

CARD_MS = 1_700_000_000_000  # every card's creation time, and the clients' clock at the join
SERVER_T0_MS = 1_700_000_100_000  # the server's `ts` of seq 0 (one second per seq)
KEY_WAIT_MS = 5000  # how long both clients wait for a missing sender key (and a stashed one)
PAST_KEY_WAIT_MS = 6000  # an `advance_ms` step that lets every such wait lapse
STAMP_KEY = bytes([0x66]) * 32
SERVER_URL = "http://replica.invalid"


def _seed(*labels: object) -> bytes:
    """32 fixed bytes per label path: every key, chain, salt and nonce comes from one."""
    text = "/".join(str(label) for label in labels)
    return hashlib.sha256(b"chatserver replica fixtures/" + text.encode()).digest()


def to_json(value: Any) -> Any:
    """bytes become {"$bin": hex}; enums their value; everything else as JSON has it."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


@dataclass(frozen=True)
class Actor:
    name: str
    pseudonym: str
    ed_seed: bytes
    x_seed: bytes

    @property
    def identity(self) -> Identity:
        return Identity.from_seeds(self.ed_seed, self.x_seed)

    @property
    def member_id(self) -> bytes:
        return self.identity.member_id

    @property
    def id(self) -> str:
        return b64id(self.member_id)

    def card(self, room_key: bytes) -> bytes:
        return self.identity.card(room_key, CARD_MS)


def _actor(name: str) -> Actor:
    return Actor(
        name, name.capitalize(), _seed("identity", name, "ed"), _seed("identity", name, "x")
    )


ALICE = _actor("alice")  # the viewer: every fixture is what alice's room shows
BOB = _actor("bob")  # the host (the charter's host seat in private rooms)
CAROL = _actor("carol")
DAVE = _actor("dave")
MALLORY = _actor("mallory")  # never a member: signs envelopes and key shares all the same
GHOST = _actor("ghost")  # a card a server tries to pass off under another member's id
CAST = [ALICE, BOB, CAROL, DAVE, MALLORY, GHOST]
BY_ID = {a.member_id: a for a in CAST}

PRIVATE_SECRET = _seed("room", "private")
LISTED_ROOM_KEY = _seed("room", "listed")[:16]


class Skds:
    """Sealed sender keys: the HPKE blob is recorded (see the module docstring)."""

    def __init__(self, previous: dict[str, Any] | None) -> None:
        self.recorded: dict[tuple[bytes, bytes], bytes] = {}
        for scenario in (previous or {}).get("scenarios", []):
            for step in scenario.get("steps", []):
                data = step.get("data")
                if step.get("push") == Push.KEY and isinstance(data, dict):
                    self._record(from_json(data).get("skd"))

    def _record(self, skd: Any) -> None:
        if not isinstance(skd, bytes):
            return
        try:
            h = parse_skd(skd)
        except E2EEError:
            return
        recipient = BY_ID.get(h.recipient_id)
        if recipient is None:
            return
        info = skd_info(h.room_id, h.sender_id, h.recipient_id, h.epoch)
        blob = skd[SKD_HEADER_LEN : SKD_HEADER_LEN + SKD_BLOB_LEN]
        try:
            plain = hpke_open(recipient.identity.x_private, info, blob)
        except E2EEError:
            return
        self.recorded[(info, plain)] = blob

    def seal(
        self,
        sender: Actor,
        recipient: Actor,
        room_key: bytes,
        *,
        epoch: int,
        key_id: int,
        start: int,
        chain_key: bytes,
    ) -> bytes:
        plain = skd_plaintext(room_key, sender.member_id, epoch, key_id, start, chain_key)
        info = skd_info(room_key, sender.member_id, recipient.member_id, epoch)
        blob = self.recorded.get((info, plain))
        if blob is None:
            blob = hpke_seal(parse_card(recipient.card(room_key)).x_public, info, plain)
            self.recorded[(info, plain)] = blob
        header = SkdHeader(room_key, sender.member_id, recipient.member_id, epoch, key_id)
        return assemble_skd(sender.identity, header, blob)


class Chain:
    """One sender chain, driven by hand: a fixed chain key and key id per (sender, epoch, label)."""

    def __init__(self, actor: Actor, epoch: int, label: str) -> None:
        self.ck0 = _seed("chain", actor.name, epoch, label)
        self.key_id = int.from_bytes(_seed("key_id", actor.name, epoch, label)[:4], "big")
        self.next = 0

    def ck(self, index: int) -> bytes:
        return advance(self.ck0, index)

    def mk(self, index: int) -> bytes:
        return chain_step(self.ck(index))[0]


def _text(text: str) -> bytes:
    return json.dumps({"text": text}, ensure_ascii=False, separators=(",", ":")).encode()


class Scenario:
    """One fixture: a room as alice joins it, the pushes that follow, what her room must show."""

    def __init__(
        self,
        skds: Skds,
        name: str,
        title: str,
        *,
        private: bool = True,
        lobby: bool = False,
        epoch: int = 1,
        seq: int = 10,
        members: tuple[Actor, ...] = (BOB, CAROL),
    ) -> None:
        self.skds = skds
        self.name = name
        self.title = title
        self.private = private
        self.lobby = lobby
        self.secret = derive_room_secret(PRIVATE_SECRET) if private else None
        self.room_key = self.secret.room_id if self.secret else LISTED_ROOM_KEY
        self.room_id = b64id(self.room_key)
        self.epoch = epoch
        self.seq = seq
        self.chains: dict[tuple[str, int, str], Chain] = {}
        self.steps: list[dict[str, Any]] = []
        self.view: list[dict[str, Any]] = []
        self.verdicts: dict[str, int] = {}
        self.final: dict[str, Any] = {}
        self.xfail: dict[str, str] = {}
        self.joined_at = SERVER_T0_MS / 1000
        in_room = [self.member(a, Role.host if a is BOB else Role.member) for a in members]
        self.join_ack = self._join_ack([*in_room, self.member(ALICE)], seq)

    # the server's views

    def member(
        self,
        actor: Actor,
        role: Role = Role.member,
        *,
        member_id: str | None = None,
    ) -> Member:
        """A member as the server keeps it: the link key's member proof in a private room, and
        in a lobby room the host's admission (for everyone but the host and alice)."""
        card = actor.card(self.room_key)
        admission = None
        if self.lobby and actor not in (BOB, ALICE):
            admission = self.admission(BOB, card)
        return Member(
            member_id=member_id or actor.id,
            pseudonym=actor.pseudonym,
            role=role,
            card=card,
            joined_at=self.joined_at,
            token_hash=b"",
            nick_chosen=True,
            admission=admission,
            member_proof=self.secret.sign_member(actor.member_id) if self.secret else None,
        )

    def admission(self, host: Actor, card: bytes) -> bytes:
        """`u32 epoch ‖ the host's signature over the card` (RoomSession.admit, docs/moderation.md)."""
        msg = admission_message(self.room_key, self.epoch, card)
        return u32(self.epoch) + host.identity.sign(msg)

    def _join_ack(self, members: list[Member], seq: int) -> dict[str, Any]:
        """What `room.join` answers (chatserver/gateway/handlers/rooms.py)."""
        room = Room(
            room_id=self.room_id,
            kind=RoomKind.peer,
            visibility=Visibility.unlisted if self.private else Visibility.listed,
            topic=None if self.private else "Evenings",
            title_ct=None,
            join_key=self.secret.join_public if self.secret else None,
            state=RoomState.open,
            epoch=self.epoch,
            capacity=50,
            created_at=self.joined_at - 600,
            expires_at=self.joined_at + 86_400,
            empty_since=None,
            members=tuple(members),
            host_id=BOB.id,
            lobby=self.lobby,
            charter=make_charter(self.secret, BOB.member_id, lobby=self.lobby)
            if self.secret
            else None,
        )
        me = members[-1]
        token = _seed("token", self.name)
        return ok(
            room=room_view(room),
            you={**member_view(me), "token": token},
            members=[member_view(m) for m in members],
            seq=seq,
        )

    # pushes

    def _ts(self, seq: int) -> int:
        return SERVER_T0_MS + seq * 1000

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def chain(self, actor: Actor, epoch: int | None = None, label: str = "main") -> Chain:
        epoch = self.epoch if epoch is None else epoch
        return self.chains.setdefault((actor.name, epoch, label), Chain(actor, epoch, label))

    def envelope(
        self,
        sender: Actor,
        body: bytes,
        *,
        index: int | None = None,
        epoch: int | None = None,
        label: str = "main",
    ) -> bytes:
        epoch = self.epoch if epoch is None else epoch
        chain = self.chain(sender, epoch, label)
        if index is None:
            index = chain.next
        chain.next = max(chain.next, index + 1)
        tag = (sender.name, epoch, label, index)
        return seal_envelope(
            sender.identity,
            room_id=self.room_key,
            epoch=epoch,
            key_id=chain.key_id,
            index=index,
            mk=chain.mk(index),
            salt=_seed("salt", *tag)[:16],
            payload=Payload(_seed("franking", *tag), 1, CARD_MS + 1000 + index, body),
        )

    def msg_push(self, sender: Actor, env: bytes, *, label: str | None = None) -> dict[str, Any]:
        """A `msg` push as msg.send makes it (chatserver/gateway/handlers/messages.py)."""
        seq = self.next_seq()
        ts = self._ts(seq)
        event: dict[str, Any] = {
            "t": Push.MSG,
            "room_id": self.room_id,
            "ts": ts,
            "from": label if label is not None else sender.id,
            "env": env,
            "stamp": server_stamp(STAMP_KEY, env, ts),
        }
        return self._sequenced(event, seq)

    def _sequenced(self, event: dict[str, Any], seq: int) -> dict[str, Any]:
        """What the bus adds (`seq`) and the gateway strips (`t`) before the push goes out."""
        return {k: v for k, v in event.items() if k != "t"} | {"seq": seq}

    def ordered(self, event: Any) -> dict[str, Any]:
        """An ordered push for a rooms-core event, exactly as `event_to_wire` makes it."""
        seq = self.next_seq()
        wire = event_to_wire(self.room_id, event, self._ts(seq))
        assert wire is not None
        return self._sequenced(dict(wire), seq)

    def push(self, name: str, data: Any, note: str) -> int:
        """Add one push (`data` as the server sends it); returns its step index."""
        self.steps.append({"note": note, "push": str(name), "data": to_json(data)})
        return len(self.steps) - 1

    def advance(self, ms: int, note: str) -> int:
        self.steps.append({"note": note, "advance_ms": ms})
        return len(self.steps) - 1

    def msg(
        self,
        sender: Actor,
        text: str,
        note: str,
        *,
        label: str | None = None,
        chain: str = "main",
        epoch: int | None = None,
    ) -> tuple[int, int]:
        """`sender` says `text`; returns (step, seq)."""
        env = self.envelope(sender, _text(text), epoch=epoch, label=chain)
        data = self.msg_push(sender, env, label=label)
        return self.push(Push.MSG, data, note), data["seq"]

    def key(
        self,
        sender: Actor,
        note: str,
        *,
        start: int = 0,
        label: str | None = None,
        chain: str = "main",
        epoch: int | None = None,
        chain_key: bytes | None = None,
    ) -> int:
        """`sender`'s chain sealed to alice, from index `start` (a `key` push, key.send)."""
        epoch = self.epoch if epoch is None else epoch
        c = self.chain(sender, epoch, chain)
        skd = self.skds.seal(
            sender,
            ALICE,
            self.room_key,
            epoch=epoch,
            key_id=c.key_id,
            start=start,
            chain_key=chain_key if chain_key is not None else c.ck(start),
        )
        data = {"room_id": self.room_id, "from": label if label is not None else sender.id}
        return self.push(Push.KEY, data | {"skd": skd}, note)

    # what alice's room must show

    def shows(self, step: int, kind: str, **fields: Any) -> None:
        self.view.append({"kind": kind, **fields, "step": step})

    def message(self, step: int, seq: int, sender: Actor, text: str) -> None:
        self.shows(step, "message", seq=seq, sender=sender.id, text=text)

    def undecryptable(self, step: int, seq: int, code: str) -> None:
        self.shows(step, "undecryptable", seq=seq, code=code)

    def counts(self, **verdicts: int) -> None:
        self.verdicts = dict(sorted(verdicts.items()))

    def ends(
        self,
        *,
        members: tuple[Actor, ...],
        epoch: int | None = None,
        seq: int | None = None,
        flagged: tuple[Actor, ...] = (),
    ) -> None:
        self.final = {
            "seq": self.seq if seq is None else seq,
            "epoch": self.epoch if epoch is None else epoch,
            "members": sorted(a.id for a in members),
            "flagged": sorted(a.id for a in flagged),
        }

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "title": self.title}
        if self.xfail:
            doc["xfail"] = self.xfail
        doc["viewer"] = {
            "name": ALICE.name,
            "nickname": ALICE.pseudonym,
            "ed_seed": ALICE.ed_seed.hex(),
            "x_seed": ALICE.x_seed.hex(),
            "card_ms": CARD_MS,
        }
        doc["room"] = {
            "room_id": self.room_id,
            "secret": self.secret.secret.hex() if self.secret else None,
            "join": to_json(self.join_ack),
        }
        doc["steps"] = self.steps
        doc["expect"] = {"view": self.view, "verdicts": self.verdicts, "final": self.final}
        return doc


# --- the scenarios ----------------------------------------------------------------------------


def in_order(skds: Skds) -> Scenario:
    s = Scenario(skds, "in_order", "Keys before envelopes, seqs in order: everything shows at once")
    s.key(BOB, "bob's chain for alice")
    a = s.msg(BOB, "hello everyone", "bob's first message")
    b = s.msg(BOB, "how was your week?", "bob's second message")
    s.key(CAROL, "carol's chain for alice")
    c = s.msg(CAROL, "long, but better now", "carol answers")
    for (step, seq), who, text in (
        (a, BOB, "hello everyone"),
        (b, BOB, "how was your week?"),
        (c, CAROL, "long, but better now"),
    ):
        s.message(step, seq, who, text)
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def out_of_order(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "out_of_order_seq",
        "Pushes out of seq order wait for the hole to fill; a seq already applied is ignored",
    )
    s.key(BOB, "bob's chain")
    s.key(CAROL, "carol's chain")
    first = s.msg_push(BOB, s.envelope(BOB, _text("one")))
    second = s.msg_push(BOB, s.envelope(BOB, _text("two")))
    third = s.msg_push(CAROL, s.envelope(CAROL, _text("three")))
    s.push(Push.MSG, second, "seq 12 arrives first: held, seq 11 is missing")
    s.push(Push.MSG, third, "seq 13: held too")
    fill = s.push(Push.MSG, first, "seq 11 fills the hole: 11, 12 and 13 show, in seq order")
    s.push(Push.MSG, second, "seq 12 again (a replay by seq): already applied, ignored")
    s.message(fill, 11, BOB, "one")
    s.message(fill, 12, BOB, "two")
    s.message(fill, 13, CAROL, "three")
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def key_after_message(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "key_after_message",
        "A message whose key is late is held for its sender only; the key releases it in order",
    )
    s.key(CAROL, "carol's chain")
    b1 = s.msg(BOB, "are you there?", "bob's message before his key: held")
    c1 = s.msg(CAROL, "I am here", "carol's message shows at once")
    b2 = s.msg(BOB, "good", "bob's second message: held behind his first")
    k = s.key(BOB, "bob's key arrives: both of his messages show, in his order")
    s.message(c1[0], c1[1], CAROL, "I am here")
    s.message(k, b1[1], BOB, "are you there?")
    s.message(k, b2[1], BOB, "good")
    assert b1[0] < c1[0] < b2[0] < k
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def key_never_arrives(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "key_never_arrives",
        "A key that never comes: past the wait the message shows as undecryptable; a departure "
        "behind it waits for that, then moves the epoch",
    )
    held = s.msg(BOB, "this key never comes", "bob's message, no key: held")
    left = s.push(
        Push.MEMBER_LEFT,
        s.ordered(MemberLeft(CAROL.id, LeaveReason.left, 2)),
        "carol leaves (epoch 2): waits for bob's held message before the epoch moves",
    )
    lapse = s.advance(PAST_KEY_WAIT_MS, "the key wait lapses")
    s.epoch = 2
    s.key(BOB, "bob's chain for epoch 2")
    after = s.msg(BOB, "new epoch", "bob's message at epoch 2")
    s.undecryptable(lapse, held[1], "unknown_chain")
    s.shows(lapse, "left", seq=held[1] + 1, member=CAROL.id, reason="left")
    s.message(after[0], after[1], BOB, "new epoch")
    assert left < lapse
    s.ends(members=(ALICE, BOB))
    return s


def bogus_chain(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "bogus_chain_no_stall",
        "Envelopes on a chain nobody holds, from one sender, never hold back another sender",
    )
    s.key(BOB, "bob's chain")
    bogus = [
        s.msg(CAROL, f"bogus {i}", f"carol's envelope {i}: chain never shared") for i in range(6)
    ]
    honest = s.msg(BOB, "honest words", "bob's message shows at once")
    lapse = s.advance(PAST_KEY_WAIT_MS, "carol's key wait lapses: all six show undecryptable")
    s.message(honest[0], honest[1], BOB, "honest words")
    for _, seq in bogus:
        s.undecryptable(lapse, seq, "unknown_chain")
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def relabelled(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "relabelled_from",
        "A msg whose `from` is not its signed sender is dropped and counted; a key's `from` "
        "installs nothing (the SKD's signed sender does)",
    )
    s.key(BOB, "bob's chain, pushed with from = carol", label=CAROL.id)
    env = s.envelope(BOB, _text("from bob"))
    s.push(Push.MSG, s.msg_push(BOB, env, label=CAROL.id), "bob's envelope labelled carol's")
    data = s.msg_push(BOB, env)
    shown = s.push(Push.MSG, data, "the same envelope under bob's id opens: nothing was consumed")
    s.message(shown, data["seq"], BOB, "from bob")
    s.counts(relabelled=1)
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def not_a_member(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "sender_not_a_member",
        "An envelope from a card that is no member is undecryptable (wrong_sender); a key share "
        "that comes before its sender's join is kept and opens its messages once they join",
    )
    s.key(MALLORY, "mallory (never a member) seals her chain to alice")
    m = s.msg(MALLORY, "let me in", "mallory's envelope")
    s.key(DAVE, "dave's key share, before his join reaches alice: kept")
    j = s.push(
        Push.MEMBER_JOINED, s.ordered(MemberJoined(s.member(DAVE))), "dave joins (a link holder)"
    )
    d = s.msg(DAVE, "hi, I'm new", "dave's first message opens with the kept key")
    s.undecryptable(m[0], m[1], "wrong_sender")
    s.shows(j, "joined", seq=m[1] + 1, member=DAVE.id, role="member")
    s.message(d[0], d[1], DAVE, "hi, I'm new")
    s.ends(members=(ALICE, BOB, CAROL, DAVE))
    return s


def replayed_envelope(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "replayed_envelope",
        "The same envelope under a new seq is a replay of its chain index: undecryptable "
        "(replay), and the chain goes on; the same key share twice changes nothing",
    )
    k = s.key(BOB, "bob's chain")
    s.steps.append({**s.steps[k], "note": "the same key share again: idempotent"})
    env = s.envelope(BOB, _text("only once"))
    first = s.msg_push(BOB, env)
    a = s.push(Push.MSG, first, "bob's message")
    s.push(Push.MSG, first, "the same push again (same seq): ignored")
    again = s.msg_push(BOB, env)
    r = s.push(Push.MSG, again, "the same envelope under a new seq: its index was used")
    n = s.msg(BOB, "and then", "bob's next index still opens")
    s.message(a, first["seq"], BOB, "only once")
    s.undecryptable(r, again["seq"], "replay")
    s.message(n[0], n[1], BOB, "and then")
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def stale_leave(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "stale_member_left",
        "A member.left that does not move the epoch forward is refused (stale_leave): the member "
        "stays, their chain still opens; a real departure then bumps the epoch",
    )
    s.key(CAROL, "carol's chain")
    s.push(
        Push.MEMBER_LEFT,
        s.ordered(MemberLeft(CAROL.id, LeaveReason.left, 1)),
        "carol 'leaves' at the current epoch 1: a replay or a forgery",
    )
    c = s.msg(CAROL, "still here", "carol's message at epoch 1 still opens")
    left = s.push(
        Push.MEMBER_LEFT,
        s.ordered(MemberLeft(CAROL.id, LeaveReason.left, 2)),
        "carol really leaves: epoch 2",
    )
    left_seq = s.seq
    s.push(
        Push.MEMBER_LEFT,
        s.ordered(MemberLeft(BOB.id, LeaveReason.removed, 2)),
        "bob 'removed' at epoch 2, the epoch carol's departure already reached: refused",
    )
    s.message(c[0], c[1], CAROL, "still here")
    s.shows(left, "left", seq=left_seq, member=CAROL.id, reason="left")
    s.counts(stale_leave=2)
    s.ends(members=(ALICE, BOB), epoch=2)
    return s


def removed_returns(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "removed_member_returns",
        "Lobby room: a removed member handed back with the old card and the host's old admission "
        "is not admitted again (removed_member); what they send is not from a member",
        lobby=True,
    )
    old = s.member(CAROL)  # carol as bob admitted her, at epoch 1
    left = s.push(
        Push.MEMBER_LEFT,
        s.ordered(MemberLeft(CAROL.id, LeaveReason.removed, 2)),
        "bob removes carol: epoch 2",
    )
    left_seq = s.seq
    s.epoch = 2
    s.push(
        Push.MEMBER_JOINED,
        s.ordered(MemberJoined(old)),
        "the server re-announces carol with her old card and admission",
    )
    s.key(CAROL, "carol's epoch-2 chain sealed to alice")
    m = s.msg(CAROL, "I'm back", "carol's envelope")
    s.key(BOB, "bob's epoch-2 chain")
    b = s.msg(BOB, "the room goes on", "bob's message")
    s.shows(left, "left", seq=left_seq, member=CAROL.id, reason="removed")
    s.undecryptable(m[0], m[1], "wrong_sender")
    s.message(b[0], b[1], BOB, "the room goes on")
    s.counts(removed_member=1)
    s.ends(members=(ALICE, BOB))
    return s


def malformed(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "malformed_pushes",
        "Ordered pushes of the wrong shape are skipped and counted malformed; a push with no "
        "integer seq, no map, or a key that is no bytes is ignored; none wedges the stream",
    )
    s.key(BOB, "bob's chain")
    joined = s.ordered(MemberJoined(s.member(DAVE)))
    del joined["member"]
    s.push(Push.MEMBER_JOINED, joined, "member.joined without a member")
    updated = s.ordered(MemberUpdated(s.member(CAROL)))
    s.push(Push.MEMBER_UPDATED, {**updated, "member": None}, "member.updated whose member is null")
    bad_seq = s.msg_push(BOB, s.envelope(BOB, _text("a seq that is a string")))
    s.seq -= 1  # not an ordered push: its seq stays free
    s.push(Push.MSG, {**bad_seq, "seq": str(bad_seq["seq"])}, "a msg whose seq is a string")
    s.push(Push.KEY, {"room_id": s.room_id, "from": BOB.id, "skd": "not bytes"}, "skd a string")
    s.push(Push.MSG, [s.room_id, s.seq + 1], "a push that is not a map")
    ok_ = s.msg(BOB, "still talking", "bob's next message shows")
    s.message(ok_[0], ok_[1], BOB, "still talking")
    s.counts(malformed=2)
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def body_profile(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "body_outside_profile",
        "Type-1 bodies outside the strict I-JSON profile (tests/vectors/body_profile.json) are "
        "undecryptable (malformed) in both clients, and consume no chain index",
    )
    cases = {c["name"]: c for c in json.loads(BODY_PROFILE.read_text())}
    s.key(BOB, "bob's chain")
    for name in ("duplicate text", "2^53", "lone high surrogate escape", "leading BOM", "NaN"):
        case = cases[name]
        assert not case["valid"], name
        env = s.envelope(BOB, bytes.fromhex(case["body_hex"]))
        data = s.msg_push(BOB, env)
        step = s.push(Push.MSG, data, f"body_profile.json {name!r}")
        s.undecryptable(step, data["seq"], "malformed")
    good = cases["simple"]
    env = s.envelope(BOB, bytes.fromhex(good["body_hex"]))
    data = s.msg_push(BOB, env)
    step = s.push(Push.MSG, data, "body_profile.json 'simple': shows")
    s.message(step, data["seq"], BOB, good["text"])
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def unproven_role(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "joined_role_unproven",
        "A member.joined claiming a staff role without a host's signed statement: a member, "
        "counted unproven_role, and the join shows the trusted role",
    )
    j = s.push(
        Push.MEMBER_JOINED,
        s.ordered(MemberJoined(s.member(DAVE, Role.moderator))),
        "dave joins labelled moderator, with no role_proof",
    )
    s.shows(j, "joined", seq=s.seq, member=DAVE.id, role="member")
    s.counts(unproven_role=1)
    s.ends(members=(ALICE, BOB, CAROL, DAVE))
    return s


def equivocation(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "equivocation_relabelled",
        "Two chain keys for one key id: the signer of the key shares is flagged, whatever the "
        "push's `from` names; the first chain stays",
    )
    s.key(BOB, "bob's chain")
    flag = s.key(
        BOB,
        "a second chain key for the same key id, signed by bob, pushed with from = carol",
        label=CAROL.id,
        chain_key=_seed("chain", "bob", s.epoch, "equivocal"),
    )
    m = s.msg(BOB, "first chain", "bob's message on the first chain still opens")
    s.shows(flag, "flagged", pseudonym=BOB.pseudonym)
    s.message(m[0], m[1], BOB, "first chain")
    s.ends(members=(ALICE, BOB, CAROL), flagged=(BOB,))
    return s


def unparsable_envelope(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "unparsable_envelope",
        "A msg whose env is no envelope (not bytes, or bytes that do not parse) has no signed "
        "sender: shown as undecryptable (malformed), not counted as a relabelling",
    )
    s.key(BOB, "bob's chain")
    noise: list[tuple[int, int]] = []
    for env, note in (("not bytes", "env is a string"), (b"\x01\x01 no envelope", "unparsable")):
        seq = s.next_seq()
        data = {"room_id": s.room_id, "ts": s._ts(seq), "from": BOB.id, "env": env}
        noise.append((s.push(Push.MSG, data | {"stamp": bytes(32), "seq": seq}, note), seq))
    (s1, a), (s2, b) = noise
    ok_ = s.msg(BOB, "after the noise", "bob's message shows")
    s.undecryptable(s1, a, "malformed")
    s.undecryptable(s2, b, "malformed")
    s.message(ok_[0], ok_[1], BOB, "after the noise")
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def leave_bad_epoch(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "member_left_epoch_not_u32",
        "A member.left whose epoch is missing, not an integer or beyond u32 is refused "
        "(stale_leave) and changes nothing: the member stays, the epoch stays",
    )
    s.key(CAROL, "carol's chain")
    for note, epoch in (
        ("epoch 2^32, one past u32", 2**32),
        ("no epoch at all", None),
        ("epoch is the string '2'", "2"),
    ):
        data = s.ordered(MemberLeft(CAROL.id, LeaveReason.left, 2))
        if epoch is None:
            del data["epoch"]
        else:
            data["epoch"] = epoch
        s.push(Push.MEMBER_LEFT, data, note)
    m = s.msg(CAROL, "I never left", "carol's message at epoch 1 still opens")
    s.message(m[0], m[1], CAROL, "I never left")
    s.counts(stale_leave=3)
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def ghost_card(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "ghost_card_under_member_id",
        "Listed room: a member.joined pairing carol's id with another card is refused "
        "(card_mismatch): not shown, carol's card kept, the ghost gets no chain and is no sender",
        private=False,
    )
    j = s.push(
        Push.MEMBER_JOINED,
        s.ordered(MemberJoined(s.member(GHOST, member_id=CAROL.id))),
        "a ghost's card under carol's member id",
    )
    s.key(GHOST, "the ghost seals its chain to alice")
    g = s.msg(GHOST, "trust me", "the ghost's envelope")
    s.undecryptable(g[0], g[1], "wrong_sender")
    s.counts(card_mismatch=1)
    s.ends(members=(ALICE, BOB, CAROL))
    assert j < g[0]
    return s


def ts_not_an_int(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "msg_ts_not_an_int",
        "A msg whose server `ts` is not a number is a malformed push: skipped and counted, even "
        "though its envelope would open (the room's times and disappearing timers read `ts`)",
    )
    s.key(BOB, "bob's chain")
    data = s.msg_push(BOB, s.envelope(BOB, _text("when was this?")))
    s.push(Push.MSG, {**data, "ts": "soon"}, "bob's message, its ts a string")
    m = s.msg(BOB, "now", "bob's next message shows")
    s.message(m[0], m[1], BOB, "now")
    s.counts(malformed=1)
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def member_view_refusals(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "member_view_refusals_counted",
        "Member views both clients refuse, each counted under its own verdict: a card that is not "
        "bytes (malformed), a card that does not derive the view's member_id (card_mismatch), an "
        "update for a member never admitted (unknown_member)",
    )
    data = s.ordered(MemberJoined(s.member(DAVE)))
    data["member"]["card"] = data["member"]["card"].hex()
    s.push(Push.MEMBER_JOINED, data, "dave joins, his card a hex string")
    ghost = replace(s.member(GHOST, member_id=CAROL.id), member_proof=s.member(CAROL).member_proof)
    s.push(
        Push.MEMBER_JOINED,
        s.ordered(MemberJoined(ghost)),
        "a ghost's card under carol's id, with carol's valid member proof",
    )
    s.push(
        Push.MEMBER_UPDATED,
        s.ordered(MemberUpdated(s.member(MALLORY))),
        "an update for mallory, never admitted",
    )
    s.key(CAROL, "carol's chain")
    m = s.msg(CAROL, "still me", "carol's card was kept: her message opens")
    s.message(m[0], m[1], CAROL, "still me")
    s.counts(malformed=1, card_mismatch=1, unknown_member=1)
    s.ends(members=(ALICE, BOB, CAROL))
    return s


def room_ended(skds: Skds) -> Scenario:
    s = Scenario(
        skds,
        "rename_then_room_ended",
        "A rename shows; room.ended ends the stream and nothing after it is applied",
    )
    s.key(BOB, "bob's chain")
    renamed = replace(s.member(CAROL), pseudonym="Caz")
    r = s.push(Push.MEMBER_UPDATED, s.ordered(MemberUpdated(renamed)), "carol renames herself")
    r_seq = s.seq
    e = s.push(Push.ROOM_ENDED, s.ordered(RoomEnded(EndReason.ended_by_host)), "the host ends it")
    end_seq = s.seq
    s.msg(BOB, "after the end", "a msg after room.ended: never applied")
    s.shows(r, "renamed", seq=r_seq, member=CAROL.id, pseudonym="Caz")
    s.shows(e, "ended", reason="ended_by_host")
    s.ends(members=(ALICE, BOB, CAROL), seq=end_seq)
    return s


SCENARIOS = [
    in_order,
    out_of_order,
    key_after_message,
    key_never_arrives,
    bogus_chain,
    relabelled,
    not_a_member,
    replayed_envelope,
    stale_leave,
    removed_returns,
    malformed,
    body_profile,
    room_ended,
    unproven_role,
    equivocation,
    unparsable_envelope,
    leave_bad_epoch,
    ghost_card,
    ts_not_an_int,
    member_view_refusals,
]


def build(previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fixture document; `previous` (the file as it is) lends its recorded HPKE blobs."""
    skds = Skds(previous)
    return {
        "description": (
            "Client replica fixtures: for each scenario, the room as the viewer joins it, the "
            "server pushes that follow, and what the viewer's room must show (docs/e2ee.md, "
            '"Client replica fixtures"). Byte strings are {"$bin": hex}. Generated by '
            "scripts/gen_replica_fixtures.py."
        ),
        "version": 1,
        "key_wait_ms": KEY_WAIT_MS,
        "clock_ms": CARD_MS,
        "nondeterministic": ["the HPKE blob of every skd (bytes 60..185) and its signature"],
        "cast": {a.name: {"member_id": a.id, "pseudonym": a.pseudonym} for a in CAST},
        "verdicts": {
            "relabelled": "a msg whose `from` is not the envelope's signed sender",
            "stale_leave": "a member.left that does not move the epoch forward to a u32",
            "malformed": "an ordered push of the wrong shape, skipped",
            "removed_member": "a member seen removed, announced again",
            "unproven_member": "a private room's member view without a valid member link proof",
            "unproven_role": "a staff role no trusted host signed",
            "card_mismatch": "a member view whose card does not derive its member_id",
            "unknown_member": "a member.updated for someone never admitted",
        },
        "scenarios": [make(skds).document() for make in SCENARIOS],
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    previous = json.loads(OUT.read_text()) if OUT.exists() else None
    text = render(build(previous))
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale; run scripts/gen_replica_fixtures.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
