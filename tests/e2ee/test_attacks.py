"""Attacks: each must fail with its specific, catalogued E2EEError code."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chatserver.e2ee import (
    HEADER_LEN,
    SIG_LEN,
    E2EEError,
    Identity,
    parse_card,
    parse_envelope,
    parse_skd,
    server_stamp,
    verify_envelope,
    verify_report,
    verify_skd,
)
from chatserver.e2ee.chain import advance, chain_step
from chatserver.e2ee.constants import ds
from chatserver.e2ee.envelope import seal_padded
from chatserver.e2ee.padding import pad
from chatserver.e2ee.payload import Payload, encode_payload, franking_commitment
from chatserver.e2ee.primitives import hpke_seal
from chatserver.e2ee.skd import SkdHeader, assemble_skd, skd_info, skd_plaintext

from .helpers import T0, Clock, ManualSender, flip, make_room, send, share


def code_of(fn: Callable[[], object]) -> str:
    with pytest.raises(E2EEError) as e:
        fn()
    return e.value.code


def resign(identity: Identity, env: bytes) -> bytes:
    """What a malicious *sender* can do: alter its own envelope and sign it again."""
    body = env[:-SIG_LEN]
    return body + identity.sign(ds("sig") + body)


# --- envelope integrity ---------------------------------------------------------------


@pytest.mark.parametrize("offset", [38, 42, 46, 62, 94, HEADER_LEN, HEADER_LEN + 100])
def test_tampered_bytes_break_the_signature(offset: int) -> None:
    _, (a, b) = make_room(2)
    env = send(a, [b])
    bad = flip(env, offset)
    assert code_of(lambda: b.decrypt(bad)) == "bad_signature"
    assert code_of(lambda: verify_envelope(bad, parse_card(a.card))) == "bad_signature"
    assert b.decrypt(env).text == "hi"  # the failed attempt changed no state


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (0, "unknown_version"),
        (1, "unknown_suite"),
        (2, "wrong_room"),
        (18, "wrong_sender"),
        (34, "future_epoch"),
        (129, "bad_length"),
    ],
)
def test_tampered_routing_fields(offset: int, code: str) -> None:
    _, (a, b) = make_room(2)
    env = send(a, [b])
    assert code_of(lambda: b.decrypt(flip(env, offset))) == code


def test_tampered_signature() -> None:
    _, (a, b) = make_room(2)
    env = send(a, [b])
    assert code_of(lambda: b.decrypt(flip(env, len(env) - 1))) == "bad_signature"
    assert code_of(lambda: b.decrypt(env[:-SIG_LEN] + bytes(SIG_LEN))) == "bad_signature"


def test_ciphertext_tampered_by_signer_fails_aead() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    env = a.envelope(0)
    assert code_of(lambda: b.decrypt(resign(a.identity, flip(env, HEADER_LEN + 5)))) == "aead"
    assert b.decrypt(env).text == "x"


def test_truncated_and_oversized() -> None:
    _, (a, b) = make_room(2)
    env = send(a, [b])
    assert code_of(lambda: b.decrypt(env[:-1])) == "bad_length"
    assert code_of(lambda: b.decrypt(env + b"\x00")) == "bad_length"
    assert code_of(lambda: b.decrypt(env[:100])) == "bad_length"
    assert code_of(lambda: b.decrypt(b"\x01")) == "malformed"
    assert code_of(lambda: parse_envelope(bytes(70_000))) == "bad_length"


def test_replayed_envelope() -> None:
    _, (a, b) = make_room(2)
    env = send(a, [b])
    b.decrypt(env)
    assert code_of(lambda: b.decrypt(env)) == "replay"


def test_old_epoch() -> None:
    _, (a, b) = make_room(2)
    env = send(a, [b])
    b.set_epoch(1)
    assert code_of(lambda: b.decrypt(env)) == "old_epoch"


def test_unknown_chain_before_key_share() -> None:
    _, (a, b) = make_room(2)
    env = a.encrypt("early")
    assert code_of(lambda: b.decrypt(env)) == "unknown_chain"


def test_too_far_ahead() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    assert code_of(lambda: b.decrypt(a.envelope(1001))) == "too_far_ahead"
    assert b.decrypt(a.envelope(1000)).text == "x"


def test_non_member_sender() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    assert code_of(lambda: b.decrypt(a.envelope(0))) == "wrong_sender"


# --- identity ------------------------------------------------------------------------------


def test_member_a_claiming_member_bs_id() -> None:
    _, (a, b, c) = make_room(3)
    env = send(a, [b, c])
    forged = bytearray(env)
    forged[18:34] = b.member_id
    forged_env = resign(a._identity, bytes(forged))
    assert code_of(lambda: c.decrypt(forged_env)) == "bad_signature"
    assert code_of(lambda: verify_envelope(forged_env, parse_card(a.card))) == "wrong_sender"
    assert code_of(lambda: verify_envelope(forged_env, parse_card(b.card))) == "bad_signature"


def test_forged_cards() -> None:
    room_id, (b,) = make_room(1)
    mallory = Identity.generate()
    card = mallory.card(room_id, T0)
    assert code_of(lambda: parse_card(flip(card, len(card) - 1))) == "bad_card"
    assert code_of(lambda: parse_card(flip(card, 100))) == "bad_card"  # created_ms vs sig
    # member_id not derived from the keys, although correctly self-signed
    body = bytearray(card[:-SIG_LEN])
    body[17:33] = bytes(16)
    resigned = bytes(body) + mallory.sign(ds("card") + bytes(body))
    assert code_of(lambda: parse_card(resigned)) == "bad_card"
    assert code_of(lambda: b.add_member(resigned)) == "bad_card"
    # X25519 key swapped (a server substituting its own sealing key)
    swapped = bytearray(card)
    swapped[65:97] = Identity.generate().x_public
    assert code_of(lambda: parse_card(bytes(swapped))) == "bad_card"
    assert code_of(lambda: parse_card(card, b"\x00" * 16)) == "wrong_room"
    assert code_of(lambda: parse_card(card[:-1])) == "bad_length"
    assert code_of(lambda: parse_card(b"\x02" + card[1:])) == "unknown_version"
    assert code_of(lambda: parse_card(b"")) == "malformed"


def test_card_with_small_order_keys_rejected() -> None:
    ident = Identity.generate()
    card = ident.card(b"r" * 16, T0)
    weak_ed = bytearray(card)
    weak_ed[33:65] = bytes.fromhex("01" + "00" * 31)
    assert code_of(lambda: parse_card(bytes(weak_ed))) == "bad_card"
    weak_x = bytearray(card)
    weak_x[65:97] = bytes(32)
    assert code_of(lambda: parse_card(bytes(weak_x))) == "bad_card"


# --- sender-key distribution ---------------------------------------------------------------


def test_equivocating_chain_key_for_same_key_id() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    b.receive_key_share(a.skd_for(b, start=5))  # consistent re-share: accepted, no-op
    assert code_of(lambda: b.receive_key_share(a.skd_for(b, chain_key=b"\x99" * 32))) == (
        "equivocation"
    )
    assert a.identity.member_id in b.flagged


def test_key_commitment_catches_split_views() -> None:
    """The sender gives B and C different chain keys for one key_id, then sends one envelope."""
    _, (b, c) = make_room(2)
    a = ManualSender(b.room_id)
    for rc in (b, c):
        rc.add_member(a.card)
    b.receive_key_share(a.skd_for(b))
    c.receive_key_share(a.skd_for(c, chain_key=b"\x42" * 32))
    env = a.envelope(0)
    assert b.decrypt(env).text == "x"
    assert code_of(lambda: c.decrypt(env)) == "key_commitment"


def test_tampered_skd() -> None:
    _, (a, b) = make_room(2)
    a.encrypt("x")
    [(_, skd)] = a.pending_key_shares()
    assert code_of(lambda: b.receive_key_share(flip(skd, 100))) == "bad_signature"
    assert code_of(lambda: b.receive_key_share(flip(skd, 55))) == "bad_signature"  # key_id
    assert code_of(lambda: b.receive_key_share(skd[:-1])) == "bad_length"
    assert code_of(lambda: b.receive_key_share(flip(skd, 1, 0x03))) == "malformed"
    assert code_of(lambda: verify_skd(skd, parse_card(b.card))) == "wrong_sender"


def test_skd_for_someone_else() -> None:
    _, (a, b, c) = make_room(3)
    a.encrypt("x")
    shares = dict(a.pending_key_shares())
    assert code_of(lambda: c.receive_key_share(shares[b.member_id])) == "wrong_recipient"


def test_skd_blob_readdressed() -> None:
    """A blob sealed to B, put in a correctly signed SKD for C, does not open for C."""
    _, (b, c) = make_room(2)
    a = ManualSender(b.room_id)
    for rc in (b, c):
        rc.add_member(a.card)
    blob = a.skd_for(b)[60:185]
    header = SkdHeader(b.room_id, a.identity.member_id, c.member_id, 0, a.key_id)
    assert code_of(lambda: c.receive_key_share(assemble_skd(a.identity, header, blob))) == "aead"


def test_skd_inner_outer_mismatch() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    b.add_member(a.card)
    plain = skd_plaintext(b.room_id, a.identity.member_id, 0, 999, 0, a.ck0)
    blob = hpke_seal(
        parse_card(b.card).x_public,
        skd_info(b.room_id, a.identity.member_id, b.member_id, 0),
        plain,
    )
    header = SkdHeader(b.room_id, a.identity.member_id, b.member_id, 0, a.key_id)
    skd = assemble_skd(a.identity, header, blob)
    assert code_of(lambda: b.receive_key_share(skd)) == "skd_mismatch"


def test_skd_epochs_and_strangers() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    skd = a.skd_for(b)
    assert code_of(lambda: b.receive_key_share(skd)) == "wrong_sender"  # not admitted
    b.add_member(a.card)
    b.set_epoch(1)
    assert code_of(lambda: b.receive_key_share(skd)) == "old_epoch"
    future = ManualSender(b.room_id, epoch=2)
    b.add_member(future.card)
    assert code_of(lambda: b.receive_key_share(future.skd_for(b))) == "future_epoch"
    assert parse_skd(skd).epoch == 0


# --- membership changes ---------------------------------------------------------------------


def test_removed_member_reads_nothing_after_epoch_bump() -> None:
    clock = Clock()
    _, (a, b, c) = make_room(3, clock)
    before = send(a, [b, c], "before")
    assert c.decrypt(before).text == "before"
    for m in (a, b):
        m.remove_member(c.member_id)
        m.set_epoch(1)
    shares = a.pending_key_shares()
    assert [rid for rid, _ in shares] == [b.member_id]  # nothing sealed to c
    b.receive_key_share(shares[0][1])
    after = [a.encrypt(f"after {i}") for i in range(3)]
    share(b, [a])
    after.append(b.encrypt("from b"))
    assert b.decrypt(after[0]).text == "after 0"
    # c keeps every key it had, at the old epoch ...
    assert {code_of(lambda e=e: c.decrypt(e)) for e in after} == {"future_epoch"}
    # ... and even if it follows the epoch, it holds no chain for it
    c.set_epoch(1)
    assert {code_of(lambda e=e: c.decrypt(e)) for e in after} == {"unknown_chain"}
    # intercepted SKD meant for b: refused, and its blob does not open with c's key
    assert code_of(lambda: c.receive_key_share(shares[0][1])) == "wrong_recipient"
    blob = shares[0][1][60:185]
    from chatserver.e2ee.primitives import hpke_open

    info = skd_info(a.room_id, a.member_id, c.member_id, 1)
    assert code_of(lambda: hpke_open(c._identity.x_private, info, blob)) == "aead"


# --- padding, franking, stamps --------------------------------------------------------------


def _padded_envelope(a: ManualSender, padded: bytes, *, fc: bytes | None = None) -> bytes:
    from chatserver.e2ee.envelope import make_ctx

    payload = Payload(b"f" * 32, 1, T0, b'{"text":"x"}')
    ctx = make_ctx(a.room_id, a.identity.member_id, a.epoch, a.key_id, 0)
    return seal_padded(
        a.identity,
        room_id=a.room_id,
        epoch=a.epoch,
        key_id=a.key_id,
        index=0,
        mk=a.mk(0),
        salt=b"s" * 16,
        franking_commit=fc or franking_commitment(payload.franking_key, ctx, payload.franked),
        padded=padded,
    )


@pytest.mark.parametrize("variant", ["no_marker", "wrong_marker", "zeros"])
def test_wrong_padding(variant: str) -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    payload = encode_payload(Payload(b"f" * 32, 1, T0, b'{"text":"x"}'))
    padded = {
        "no_marker": payload + bytes(256 - len(payload)),
        "wrong_marker": payload + b"\x81" + bytes(255 - len(payload)),
        "zeros": bytes(256),
    }[variant]
    assert code_of(lambda: b.decrypt(_padded_envelope(a, padded))) == "padding"
    assert b.decrypt(_padded_envelope(a, pad(payload))).text == "x"


def test_sender_lies_in_franking_commitment() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    payload = encode_payload(Payload(b"f" * 32, 1, T0, b'{"text":"x"}'))
    env = _padded_envelope(a, pad(payload), fc=b"\x00" * 32)
    assert code_of(lambda: b.decrypt(env)) == "franking"


def test_franking_forgery_by_reporter() -> None:
    _, (a, b) = make_room(2)
    env = send(a, [b], "what was really said")
    o = b.decrypt(env)
    key = b"K" * 32
    stamp = server_stamp(key, env, 99)
    altered = o.report_body.replace(b"really", b"falsely")
    assert code_of(
        lambda: verify_report(key, env, 99, stamp, o.franking_key, altered, b.members()[0])
    ) == ("franking")
    wrong_key = b"\x00" * 32
    assert code_of(
        lambda: verify_report(key, env, 99, stamp, wrong_key, o.report_body, b.members()[0])
    ) == ("franking")
    # the same body attributed to another message of the same sender
    env2 = send(a, [b], "something else")
    stamp2 = server_stamp(key, env2, 100)
    assert code_of(
        lambda: verify_report(key, env2, 100, stamp2, o.franking_key, o.report_body, b.members()[0])
    ) == ("franking")


def test_forged_stamp() -> None:
    _, (a, b) = make_room(2)
    env = send(a, [b])
    o = b.decrypt(env)
    key = b"K" * 32
    stamp = server_stamp(key, env, 99)
    rb, fk = o.report_body, o.franking_key
    assert (
        code_of(lambda: verify_report(key, env, 99, flip(stamp, 0), fk, rb, b.members()[0]))
        == "bad_stamp"
    )
    assert (
        code_of(lambda: verify_report(key, env, 98, stamp, fk, rb, b.members()[0])) == "bad_stamp"
    )
    other = server_stamp(b"L" * 32, env, 99)
    assert (
        code_of(lambda: verify_report(key, env, 99, other, fk, rb, b.members()[0])) == "bad_stamp"
    )
    env2 = send(a, [b])
    assert (
        code_of(lambda: verify_report(key, env2, 99, stamp, fk, rb, b.members()[0])) == "bad_stamp"
    )


def test_room_crypto_rejects_wrong_room_objects() -> None:
    _, (a, _b) = make_room(2)
    _, (x, y) = make_room(2)
    env = send(x, [y])
    assert code_of(lambda: a.decrypt(env)) == "wrong_room"
    assert code_of(lambda: a.add_member(x.card)) == "wrong_room"
    skd = ManualSender(x.room_id).skd_for(y)
    assert code_of(lambda: a.receive_key_share(skd)) == "wrong_room"


def test_chain_keys_only_go_forward() -> None:
    """Holding ck_i reveals nothing earlier: index i-1 is unreachable by construction."""
    ck0 = bytes(32)
    mk0, ck1 = chain_step(ck0)
    assert advance(ck0, 1) == ck1
    assert mk0 not in {chain_step(advance(ck1, i))[0] for i in range(50)}
