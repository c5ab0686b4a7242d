"""Receiver chain hygiene: forward secrecy of what is kept, re-share checks, and tombstones.

Mirrors web/test/chain_hygiene.test.mjs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chatserver.e2ee import E2EEError, RoomCrypto, session
from chatserver.e2ee.chain import ReceiverChain, advance, chain_step
from chatserver.e2ee.constants import (
    MAX_CHAINS_PER_SENDER,
    MAX_SKIP,
    MAX_TOMBSTONES_PER_SENDER,
    ROTATE_AFTER_MS,
)

from .helpers import Clock, ManualSender, make_room


def code_of(fn: Callable[[], object]) -> str:
    with pytest.raises(E2EEError) as e:
        fn()
    return e.value.code


def kept_values(obj: Any) -> Iterator[Any]:
    """Every value reachable from a chain object (fields, cache entries, tuples)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from kept_values(getattr(obj, f.name))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from kept_values(k)
            yield from kept_values(v)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from kept_values(v)
    else:
        yield obj


def peer_chain(rc: RoomCrypto, sender_id: bytes, key_id: int) -> ReceiverChain:
    return rc._chains[sender_id][key_id]


# --- forward secrecy ---------------------------------------------------------------------


def test_receiver_chain_has_no_start_key() -> None:
    names = {f.name for f in dataclasses.fields(ReceiverChain)}
    assert "start_ck" not in names
    assert "start_index" not in names
    assert {n for n in names if n == "ck" or n.endswith("_ck")} == {"ck"}


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 1, 0, 2], [2, 0, 3, 1]])
def test_nothing_kept_derives_a_consumed_message_key(order: list[int]) -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    for i in order:
        assert b.decrypt(a.envelope(i)).text == "x"
    chain = peer_chain(b, a.identity.member_id, a.key_id)
    assert chain.next_index == 4
    assert not chain.skipped
    consumed_mk = {a.mk(i) for i in range(4)}
    consumed_ck = {advance(a.ck0, i) for i in range(4)}
    keys = [v for v in kept_values(chain) if isinstance(v, bytes) and len(v) == 32]
    assert keys == [advance(a.ck0, 4)]
    for k in keys:
        assert k not in consumed_mk | consumed_ck
        # Stepping any kept key forward never meets a consumed message key.
        ck = k
        for _ in range(64):
            mk, ck = chain_step(ck)
            assert mk not in consumed_mk


def test_skipped_cache_keeps_only_unread_message_keys() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    b.decrypt(a.envelope(5))
    chain = peer_chain(b, a.identity.member_id, a.key_id)
    assert {i: mk for i, (mk, _) in chain.skipped.items()} == {i: a.mk(i) for i in range(5)}
    b.decrypt(a.envelope(2))
    assert 2 not in chain.skipped
    keys = {v for v in kept_values(chain) if isinstance(v, bytes) and len(v) == 32}
    assert a.mk(2) not in keys
    assert a.mk(5) not in keys
    assert advance(a.ck0, 0) not in keys


# --- re-shares and equivocation without a start key --------------------------------------


def test_harmless_reshares_are_ignored_either_side_of_the_position() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)  # shared at index 0
    for i in range(4):
        b.decrypt(a.envelope(i))
    chain = peer_chain(b, a.identity.member_id, a.key_id)
    before = (chain.ck, chain.next_index)
    for start in (0, 2, 4, 9, 4 + MAX_SKIP):
        b.receive_key_share(a.skd_for(b, start=start))
        assert (chain.ck, chain.next_index) == before  # ignored: nothing rewinds or jumps
    assert code_of(lambda: b.decrypt(a.envelope(1))) == "replay"
    assert b.decrypt(a.envelope(4)).text == "x"
    assert not b.flagged


@pytest.mark.parametrize("start", [0, 3, 5, 40])
def test_different_chain_key_is_equivocation(start: int) -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    for i in range(3):
        b.decrypt(a.envelope(i))
    bad = b.receive_key_share
    skd = a.skd_for(b, start=start, chain_key=b"\x99" * 32)
    assert code_of(lambda: bad(skd)) == "equivocation"
    assert a.identity.member_id in b.flagged
    assert b.decrypt(a.envelope(3)).text == "x"  # the chain we hold is untouched


def test_reshare_too_far_from_our_position() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    for i in (0, 600, 1200):
        b.decrypt(a.envelope(i))  # next_index 1201
    assert code_of(lambda: b.receive_key_share(a.skd_for(b, start=0))) == "too_far_ahead"
    assert code_of(lambda: b.receive_key_share(a.skd_for(b, start=2202))) == "too_far_ahead"
    b.receive_key_share(a.skd_for(b, start=1201 - MAX_SKIP))
    b.receive_key_share(a.skd_for(b, start=1201 + MAX_SKIP))
    assert not b.flagged


# --- tombstones against chain reinstallation ----------------------------------------------


def rotating_room() -> tuple[Clock, RoomCrypto, RoomCrypto]:
    clock = Clock()
    _, (a, b) = make_room(2, clock)
    return clock, a, b


def new_chain(clock: Clock, a: RoomCrypto, b: RoomCrypto, text: str) -> tuple[bytes, bytes]:
    """One rotation of a's chain: (envelope, b's SKD for it); the SKD is delivered."""
    clock.advance(ROTATE_AFTER_MS)
    env = a.encrypt(text)
    ((rid, skd),) = a.pending_key_shares()
    assert rid == b.member_id
    b.receive_key_share(skd)
    return env, skd


def test_evicted_chain_is_never_reinstalled() -> None:
    clock, a, b = rotating_room()
    sent = [new_chain(clock, a, b, f"m{i}") for i in range(MAX_CHAINS_PER_SENDER + 1)]
    assert len(b._chains[a.member_id]) == MAX_CHAINS_PER_SENDER
    (first_env, first_skd), *_ = sent
    assert code_of(lambda: b.decrypt(first_env)) == "unknown_chain"
    assert code_of(lambda: b.receive_key_share(first_skd)) == "replay"
    assert code_of(lambda: b.decrypt(first_env)) == "unknown_chain"  # still does not open
    for env, skd in sent[1:]:
        b.receive_key_share(skd)  # live chains: a harmless re-share, ignored
        assert (b.decrypt(env).text or "").startswith("m")
    assert not b.flagged
    # Tombstones hold ids only, no key material.
    stones = b._tombstones[a.member_id]
    assert all(isinstance(k, int) for k in stones)


def test_removed_member_coming_back_in_the_same_epoch() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    old_skd, old_env = a.skd_for(b), a.envelope(0)
    b.remove_member(a.identity.member_id)
    b.add_member(a.card)
    assert code_of(lambda: b.receive_key_share(old_skd)) == "replay"
    assert code_of(lambda: b.decrypt(old_env)) == "unknown_chain"
    a.key_id += 1  # a fresh chain is welcome
    b.receive_key_share(a.skd_for(b))
    assert b.decrypt(a.envelope(0)).text == "x"


def test_epoch_change_clears_tombstones() -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    b.remove_member(a.identity.member_id)
    assert b._tombstones
    b.set_epoch(1)
    assert not b._tombstones
    a.epoch = 1
    b.add_member(a.card)
    b.receive_key_share(a.skd_for(b))  # same key_id, new epoch: a different chain
    assert b.decrypt(a.envelope(0)).text == "x"


def test_tombstones_are_bounded_per_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "MAX_TOMBSTONES_PER_SENDER", 8)
    _, (b,) = make_room(1)
    flood, other = ManualSender(b.room_id, key_id=1000), ManualSender(b.room_id, key_id=1)
    for s in (flood, other):
        b.add_member(s.card)
    for k in range(1, 1 + MAX_CHAINS_PER_SENDER + 1):
        other.key_id = k
        b.receive_key_share(other.skd_for(b))
    for k in range(1000, 1000 + MAX_CHAINS_PER_SENDER + 20):
        flood.key_id = k
        b.receive_key_share(flood.skd_for(b))
    assert list(b._tombstones[flood.identity.member_id]) == list(range(1012, 1020))
    # One sender's flood never pushes out another sender's tombstones.
    assert list(b._tombstones[other.identity.member_id]) == [1]
    other.key_id = 1
    assert code_of(lambda: b.receive_key_share(other.skd_for(b))) == "replay"
    assert MAX_TOMBSTONES_PER_SENDER == 1024
