"""The committed project vectors are current and every recorded vector verifies.

The browser implementation checks the same file (tests/vectors/project.json).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chatserver.e2ee import (
    Identity,
    RoomCrypto,
    derive_room_secret,
    open_meta,
    parse_card,
    safety_code,
    server_stamp,
    verify_envelope,
    verify_join_proof,
    verify_report,
    verify_skd,
)
from chatserver.e2ee.chain import chain_step
from chatserver.e2ee.charter import Charter, make_charter, open_charter
from chatserver.e2ee.envelope import open_with_key, parse_envelope
from chatserver.e2ee.question import open_question, question_message, sign_question
from chatserver.e2ee.roles import role_message, sign_role, verify_role
from chatserver.e2ee.room_secret import member_link_message, verify_member_link_proof
from chatserver.e2ee.seat import seat_message, sign_seat, verify_seat_proof
from chatserver.e2ee.skd import open_skd

ROOT = Path(__file__).resolve().parents[2]
PATH = ROOT / "tests" / "vectors" / "project.json"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_vectors", ROOT / "scripts" / "gen_vectors.py"
    )
    assert spec
    assert spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


V: dict[str, Any] = json.loads(PATH.read_text())


def x(h: str) -> bytes:
    return bytes.fromhex(h)


def ident(name: str) -> Identity:
    v = next(i for i in V["identities"] if i["name"] == name)
    return Identity.from_seeds(x(v["ed_seed"]), x(v["x_seed"]))


def _strip(doc: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    for path in doc["nondeterministic"]:
        *parents, leaf = path.split(".")
        node = doc
        for p in parents:
            node = node[p]
        del node[leaf]
    return doc


def test_file_is_what_the_script_generates() -> None:
    gen = _load_script()
    recorded_blob = x(V["skd"]["blob"])
    assert gen.render(gen.build(recorded_blob)) == PATH.read_text()
    # and a fresh run differs only in the declared nondeterministic fields
    assert _strip(gen.build()) == _strip(V)


def test_room_vectors() -> None:
    r = V["room"]
    rs = derive_room_secret(x(r["secret"]))
    assert (rs.room_id.hex(), rs.join_public.hex(), rs.meta_key.hex()) == (
        r["room_id"],
        r["join_public"],
        r["meta_key"],
    )
    j = r["join"]
    assert verify_join_proof(
        rs.join_public, rs.room_id, x(j["nonce"]), x(j["member_id"]), x(j["proof"])
    )
    assert open_meta(rs.meta_key, rs.room_id, x(r["meta"]["blob"])) == r["meta"]["text"]


@pytest.mark.parametrize("v", V["identities"], ids=lambda v: v["name"])
def test_identity_vectors(v: dict[str, Any]) -> None:
    i = Identity.from_seeds(x(v["ed_seed"]), x(v["x_seed"]))
    assert (i.ed_public.hex(), i.x_public.hex(), i.member_id.hex()) == (
        v["ed_public"],
        v["x_public"],
        v["member_id"],
    )
    card = parse_card(x(v["card"]), x(V["room"]["room_id"]))
    assert card.created_ms == v["created_ms"]
    assert card.member_id.hex() == v["member_id"]


def test_chain_vectors() -> None:
    ck = x(V["chain"]["ck0"])
    for step in V["chain"]["steps"]:
        mk, nxt = chain_step(ck)
        assert (ck.hex(), mk.hex(), nxt.hex()) == (step["ck"], step["mk"], step["ck_next"])
        ck = nxt


@pytest.mark.parametrize("v", V["envelopes"], ids=lambda v: str(v["inputs"]["index"]))
def test_envelope_vectors_open(v: dict[str, Any]) -> None:
    env = x(v["envelope"])
    card = parse_card(x(V["identities"][0]["card"]))
    h = verify_envelope(env, card)
    assert h.key_commit.hex() == v["key_commit"]
    assert h.franking_commit.hex() == v["franking_commit"]
    p = open_with_key(env, h, x(v["inputs"]["mk"]))
    assert (p.franking_key.hex(), p.msg_type, p.client_ts_ms, p.body.hex()) == (
        v["inputs"]["franking_key"],
        v["inputs"]["msg_type"],
        v["inputs"]["client_ts_ms"],
        v["inputs"]["body"],
    )


def test_skd_vector_opens_for_bob() -> None:
    s = V["skd"]
    alice_card = parse_card(x(V["identities"][0]["card"]))
    skd = x(s["skd"])
    assert verify_skd(skd, alice_card).key_id == s["inputs"]["key_id"]
    content = open_skd(ident("bob"), skd, alice_card)
    assert content.chain_key.hex() == s["inputs"]["chain_key"]
    assert content.start_index == s["inputs"]["start_index"]


def test_vectors_drive_a_real_session() -> None:
    room_id = x(V["room"]["room_id"])
    bob = RoomCrypto(ident("bob"), room_id, epoch=V["skd"]["inputs"]["epoch"], now_ms=lambda: 0)
    bob.add_member(x(V["identities"][0]["card"]))
    bob.receive_key_share(x(V["skd"]["skd"]))
    assert bob.decrypt(x(V["envelopes"][0]["envelope"])).text == "hello, I hear you"


def test_safety_and_stamp_vectors() -> None:
    s = V["safety_code"]
    cards = [x(c) for c in s["cards"]]
    assert safety_code(x(s["room_id"]), s["epoch"], cards) == s["code"]
    t = V["stamp"]
    env = x(t["envelope"])
    assert server_stamp(x(t["server_key"]), env, t["server_ts_ms"]).hex() == t["stamp"]
    sender = parse_envelope(env)
    [card] = [
        parse_card(x(i["card"]), sender.room_id)
        for i in V["identities"]
        if parse_card(x(i["card"]), sender.room_id).member_id == sender.sender_id
    ]
    verify_report(
        x(t["server_key"]),
        env,
        t["server_ts_ms"],
        x(t["stamp"]),
        x(t["report"]["franking_key"]),
        x(t["report"]["franked_body"]),
        card,
    )


def test_signed_statement_vectors() -> None:
    """Seat proof, member link proof, charter and question: the same bytes the browser makes."""
    rs = derive_room_secret(x(V["room"]["secret"]))
    room_id = rs.room_id
    alice, bob = ident("alice"), ident("bob")
    seat = V["seat"]
    assert seat_message(room_id, x(seat["nonce"]), alice.member_id) == x(seat["signed"])
    assert sign_seat(alice, room_id, x(seat["nonce"])) == x(seat["proof"])
    assert verify_seat_proof(
        alice.ed_public, room_id, x(seat["nonce"]), alice.member_id, x(seat["proof"])
    )
    link = V["room"]["member_link"]
    assert member_link_message(room_id, alice.member_id) == x(link["signed"])
    assert rs.sign_member(alice.member_id) == x(link["proof"])
    assert verify_member_link_proof(rs.join_public, room_id, alice.member_id, x(link["proof"]))
    assert not verify_member_link_proof(rs.join_public, room_id, bob.member_id, x(link["proof"]))
    charter = V["room"]["charter"]
    assert make_charter(rs, bob.member_id, lobby=True) == x(charter["charter"])
    assert make_charter(rs, None, lobby=False) == x(charter["no_host"])
    assert open_charter(rs.join_public, room_id, x(charter["charter"])) == Charter(
        bob.member_id, True
    )
    assert open_charter(rs.join_public, room_id, x(charter["no_host"])) == Charter(None, False)
    r = V["role"]
    signed = role_message(room_id, alice.member_id, "host", r["issued_ms"], bob.member_id)
    assert signed == x(r["signed"])
    assert sign_role(bob, room_id, alice.member_id, "host", r["issued_ms"]) == x(r["proof"])
    assert verify_role(bob.ed_public, room_id, alice.member_id, "host", x(r["proof"]))
    assert not verify_role(bob.ed_public, room_id, alice.member_id, "moderator", x(r["proof"]))
    assert not verify_role(alice.ed_public, room_id, alice.member_id, "host", x(r["proof"]))
    q = V["question"]
    body = q["json"].encode()
    assert question_message(room_id, alice.member_id, bob.member_id, body) == x(q["signed"])
    assert sign_question(alice, room_id, bob.member_id, body) == x(q["plaintext"])
    assert (
        open_question(x(q["plaintext"]), room_id, alice.member_id, alice.ed_public, bob.member_id)
        == body
    )
