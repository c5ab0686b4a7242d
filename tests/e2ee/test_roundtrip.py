"""Functional behaviour: round trips, ordering, rotation, membership, epochs, codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chatserver.e2ee import (
    BUCKETS,
    ERROR_CODES,
    HEADER_LEN,
    MAX_ENVELOPE_LEN,
    SIG_LEN,
    E2EEError,
    Identity,
    RoomCrypto,
    derive_room_secret,
    new_room_secret,
    open_meta,
    parse_envelope,
    parse_skd,
    safety_code,
    seal_meta,
    server_stamp,
    verify_envelope,
    verify_join_proof,
    verify_report,
    verify_skd,
)
from chatserver.e2ee.constants import MAX_SKIPPED_KEYS, SKIPPED_KEY_TTL_MS

from .helpers import Clock, ManualSender, det_rng, make_room, send, share


def test_constants() -> None:
    assert BUCKETS == (256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
    assert HEADER_LEN == 130
    assert MAX_ENVELOPE_LEN == 130 + 65536 + 16 + 64


def test_text_round_trip_and_fields() -> None:
    clock = Clock()
    _, (a, b, c) = make_room(3, clock)
    env = send(a, [b, c], "hello, I hear you")
    assert len(env) == HEADER_LEN + 256 + 16 + SIG_LEN == 466
    for r in (b, c):
        o = r.decrypt(env)
        assert o.text == "hello, I hear you"
        assert o.msg_type == 1
        assert o.sender_id == a.member_id
        assert o.client_ts_ms == clock.t
        assert json.loads(o.body) == {"text": "hello, I hear you"}
        assert o.header.epoch == 0
        assert o.header.index == 0


def test_extra_json_keys_and_binary_types() -> None:
    _, (a, b) = make_room(2)
    env = a.encrypt(b'{"text":"tw","cw":"self-harm"}')
    share(a, [b])
    o = b.decrypt(env)
    assert o.text == "tw"
    assert json.loads(o.body)["cw"] == "self-harm"
    env = a.encrypt(b"\x00\x01binary", msg_type=7)
    o = b.decrypt(env)
    assert o.msg_type == 7
    assert o.body == b"\x00\x01binary"
    assert o.text is None


def test_bad_type1_bodies_refused_by_sender() -> None:
    _, (a, _b) = make_room(2)
    for body in (b"not json", b'{"txt":"x"}', b"[1]", b'{"text":5}'):
        with pytest.raises(E2EEError) as e:
            a.encrypt(body)
        assert e.value.code == "malformed"
    with pytest.raises(E2EEError):
        a.encrypt("x", msg_type=2)


def test_everyone_talks() -> None:
    _, members = make_room(4)
    for sender in members:
        peers = [m for m in members if m is not sender]
        env = send(sender, peers, f"from {sender.member_id.hex()}")
        for p in peers:
            assert p.decrypt(env).text == f"from {sender.member_id.hex()}"


def test_bucket_sizes() -> None:
    _, (a, b) = make_room(2)
    for n, bucket in ((0, 256), (214, 256), (215, 512), (982, 1024), (983, 2048), (65494, 65536)):
        env = a.encrypt(b"x" * n, msg_type=2)
        share(a, [b])
        assert parse_envelope(env).ct_len == bucket + 16
        assert b.decrypt(env).body == b"x" * n
    with pytest.raises(E2EEError) as e:
        a.encrypt(b"x" * 65495, msg_type=2)
    assert e.value.code == "bad_length"


def test_out_of_order_and_replay() -> None:
    _, (a, b) = make_room(2)
    envs = [send(a, [b], f"m{i}") for i in range(6)]
    for i in (4, 0, 2, 5, 1, 3):
        assert b.decrypt(envs[i]).text == f"m{i}"
    for env in envs:
        with pytest.raises(E2EEError) as e:
            b.decrypt(env)
        assert e.value.code == "replay"


def test_skipped_keys_expire() -> None:
    clock = Clock()
    _, (a, b) = make_room(2, clock)
    envs = [send(a, [b], f"m{i}") for i in range(3)]
    b.decrypt(envs[2])
    clock.advance(SKIPPED_KEY_TTL_MS - 1)
    assert b.decrypt(envs[0]).text == "m0"
    clock.advance(1)
    with pytest.raises(E2EEError) as e:
        b.decrypt(envs[1])
    assert e.value.code == "replay"


def test_skipped_cache_evicts_oldest() -> None:
    room_id, (b,) = make_room(1)
    a = ManualSender(room_id)
    a.join(b)
    b.decrypt(a.envelope(299))
    first_kept = 299 - MAX_SKIPPED_KEYS
    with pytest.raises(E2EEError) as e:
        b.decrypt(a.envelope(first_kept - 1))
    assert e.value.code == "replay"
    assert b.decrypt(a.envelope(first_kept)).text == "x"


def test_rotation_after_100_messages() -> None:
    _, (a, b, c) = make_room(3)
    envs = [a.encrypt(f"m{i}") for i in range(100)]
    assert len(a.pending_key_shares()) == 2  # first chain's SKDs (start at index 0)
    assert a.pending_key_shares() == []
    key_ids = {parse_envelope(e).key_id for e in envs}
    assert len(key_ids) == 1
    env101 = a.encrypt("m100")
    h = parse_envelope(env101)
    assert h.key_id not in key_ids
    assert h.index == 0
    shares = a.pending_key_shares()
    assert {rid for rid, _ in shares} == {b.member_id, c.member_id}
    assert {parse_skd(s).key_id for _, s in shares} == {h.key_id}


def test_rotation_after_60_minutes() -> None:
    clock = Clock()
    _, (a, b) = make_room(2, clock)
    e1 = send(a, [b])
    clock.advance(60 * 60 * 1000)
    e2 = a.encrypt("later")
    assert parse_envelope(e1).key_id != parse_envelope(e2).key_id
    assert share(a, [b]) == 1
    assert b.decrypt(e2).text == "later"
    assert b.decrypt(e1).text == "hi"  # old chain still held for late delivery


def test_late_joiner_reads_from_now_on_only() -> None:
    clock = Clock()
    room_id, (a, b) = make_room(2, clock)
    old = [send(a, [b], f"m{i}") for i in range(3)]
    d = RoomCrypto(Identity.generate(), room_id, now_ms=clock)
    for m in (a, b):
        m.add_member(d.card)
        d.add_member(m.card)
    assert share(a, [b, d]) == 1  # only d lacks the chain, at the current index
    new = a.encrypt("welcome")
    assert share(a, [b, d]) == 0
    assert d.decrypt(new).text == "welcome"
    for env in old:
        with pytest.raises(E2EEError) as e:
            d.decrypt(env)
        assert e.value.code == "replay"


def test_epoch_bump_starts_new_chain() -> None:
    _, (a, b) = make_room(2)
    e0 = send(a, [b])
    for m in (a, b):
        m.set_epoch(1)
    e1 = send(a, [b], "after")
    h0, h1 = parse_envelope(e0), parse_envelope(e1)
    assert (h1.epoch, h1.index) == (1, 0)
    assert h1.key_id != h0.key_id
    assert b.decrypt(e1).text == "after"
    with pytest.raises(E2EEError) as e:
        a.set_epoch(0)
    assert e.value.code == "old_epoch"


def test_membership_bookkeeping() -> None:
    room_id, (a, b) = make_room(2)
    assert [m.member_id for m in a.members()] == [b.member_id]
    assert a.add_member(b.card).member_id == b.member_id  # idempotent
    assert a.add_member(a.card).member_id == a.member_id  # own card ignored
    other = Identity.from_seeds(b"\x01" * 32, b"\x02" * 32)
    card1, card2 = other.card(room_id, 1), other.card(room_id, 2)
    a.add_member(card1)
    with pytest.raises(E2EEError) as e:
        a.add_member(card2)
    assert e.value.code == "bad_card"
    a.remove_member(other.member_id)
    a.remove_member(b.member_id)
    assert a.members() == []


def test_own_message() -> None:
    _, (a, b) = make_room(2)
    env = send(a, [b])
    with pytest.raises(E2EEError) as e:
        a.decrypt(env)
    assert e.value.code == "own_message"


def test_safety_code() -> None:
    clock = Clock()
    room_id, members = make_room(3, clock)
    codes = {m.safety_code() for m in members}
    assert len(codes) == 1
    code = codes.pop()
    assert re.fullmatch(r"\d{5}( \d{5}){7}", code)
    cards = [m.card for m in members]
    assert safety_code(room_id, 0, reversed(cards)) == code
    assert safety_code(room_id, 0, cards + cards[:1]) == code
    assert safety_code(room_id, 1, cards) != code
    assert safety_code(room_id, 0, cards[:2]) != code
    ghost = RoomCrypto(Identity.generate(), room_id, now_ms=clock)
    assert safety_code(room_id, 0, [*cards, ghost.card]) != code


def test_room_secret_derivation_and_join() -> None:
    rs = new_room_secret()
    again = derive_room_secret(rs.secret)
    assert again == rs
    assert len(rs.room_id) == 16
    assert len(rs.join_public) == 32
    assert len(rs.meta_key) == 32
    assert "secret" not in repr(rs).split("(")[1].split("room_id")[
        0
    ] or rs.secret.hex() not in repr(rs)
    ident = Identity.generate()
    nonce = b"n" * 16
    proof = rs.sign_join(nonce, ident.member_id)
    assert verify_join_proof(rs.join_public, rs.room_id, nonce, ident.member_id, proof)
    assert not verify_join_proof(rs.join_public, rs.room_id, b"m" * 16, ident.member_id, proof)
    assert not verify_join_proof(rs.join_public, rs.room_id, nonce, b"\x00" * 16, proof)
    other = new_room_secret()
    assert not verify_join_proof(other.join_public, rs.room_id, nonce, ident.member_id, proof)
    assert not verify_join_proof(rs.join_public, rs.room_id, b"short", ident.member_id, proof)
    with pytest.raises(E2EEError) as e:
        rs.sign_join(b"short", ident.member_id)
    assert e.value.code == "bad_length"


def test_meta_round_trip() -> None:
    rs = new_room_secret()
    blob = seal_meta(rs.meta_key, rs.room_id, "Grief support \N{SEEDLING}")
    assert open_meta(rs.meta_key, rs.room_id, blob) == "Grief support \N{SEEDLING}"
    assert len(blob) == 1 + 12 + 64 + 16
    assert len(seal_meta(rs.meta_key, rs.room_id, "")) == len(blob)
    with pytest.raises(E2EEError) as e:
        open_meta(rs.meta_key, new_room_secret().room_id, blob)
    assert e.value.code == "aead"
    deterministic = seal_meta(rs.meta_key, rs.room_id, "t", rng=det_rng(b"s"))
    assert deterministic == seal_meta(rs.meta_key, rs.room_id, "t", rng=det_rng(b"s"))


def test_server_side_checks_accept_genuine_traffic() -> None:
    _, (a, b) = make_room(2)
    env = a.encrypt("x")
    [(rid, skd)] = a.pending_key_shares()
    card_a = b.members()[0]
    assert verify_skd(skd, card_a).recipient_id == rid == b.member_id
    h = verify_envelope(env, card_a)
    assert h.sender_id == a.member_id
    assert h.ct_len == 272


def test_franking_report_round_trip() -> None:
    _, (a, b) = make_room(2)
    env = send(a, [b], "report me")
    opened = b.decrypt(env)
    key = b"K" * 32
    stamp = server_stamp(key, env, 1234)
    card_a = b.members()[0]
    h = verify_report(key, env, 1234, stamp, opened.franking_key, opened.report_body, card_a)
    assert h.sender_id == a.member_id


def test_a_stamped_envelope_nobody_signed_does_not_verify_as_a_report() -> None:
    """Whoever holds the server key can stamp anything: the accused's signature decides."""
    _, (a, b) = make_room(2)
    env = send(a, [b], "report me")
    opened = b.decrypt(env)
    key = b"K" * 32
    forged = env[:-1] + bytes([env[-1] ^ 1])  # the signature no longer holds
    stamp = server_stamp(key, forged, 1234)
    with pytest.raises(E2EEError) as bad:
        verify_report(
            key, forged, 1234, stamp, opened.franking_key, opened.report_body, b.members()[0]
        )
    assert bad.value.code == "bad_signature"
    # Nor does a genuine envelope verify against someone else's card.
    stamp = server_stamp(key, env, 1234)
    card_b = a.members()[0]
    with pytest.raises(E2EEError) as wrong:
        verify_report(key, env, 1234, stamp, opened.franking_key, opened.report_body, card_b)
    assert wrong.value.code == "wrong_sender"


def test_deterministic_sessions() -> None:
    def run() -> bytes:
        clock = Clock()
        ident = Identity.generate(rng=det_rng(b"id"))
        rc = RoomCrypto(ident, b"r" * 16, now_ms=clock, rng=det_rng(b"rc"))
        return rc.encrypt("same")

    assert run() == run()


def test_every_error_code_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "e2ee.md").read_text()
    for code in ERROR_CODES:
        assert f"`{code}`" in doc, code
