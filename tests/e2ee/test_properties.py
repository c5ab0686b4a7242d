"""Hypothesis properties: round trips for any body, rejection of any single-byte change."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatserver.e2ee import MAX_BODY_LEN, E2EEError, parse_envelope, safety_code
from chatserver.e2ee.padding import bucket_for, pad, unpad

from .helpers import ManualSender, make_room, send

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

bodies = st.one_of(
    st.binary(max_size=2048),
    st.tuples(st.integers(0, MAX_BODY_LEN), st.integers(0, 255)).map(
        lambda t: bytes([t[1]]) * t[0]
    ),
)


@SETTINGS
@given(body=bodies, msg_type=st.integers(2, 255))
def test_any_body_round_trips(body: bytes, msg_type: int) -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    env = a.envelope(0, body, msg_type)
    o = b.decrypt(env)
    assert (o.body, o.msg_type) == (body, msg_type)
    assert len(env) == 130 + bucket_for(41 + len(body)) + 16 + 64


@SETTINGS
@given(text=st.text(max_size=500))
def test_any_text_round_trips(text: str) -> None:
    _, (a, b) = make_room(2)
    assert b.decrypt(send(a, [b], text)).text == text


_, (_A, _B) = make_room(2)
_ENV = send(_A, [_B], "the one true message")


@SETTINGS
@given(data=st.data())
def test_any_single_byte_change_is_rejected(data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(_ENV) - 1))
    mask = data.draw(st.integers(1, 255))
    bad = bytearray(_ENV)
    bad[pos] ^= mask
    try:
        _B.decrypt(bytes(bad))
    except E2EEError:
        pass
    else:
        raise AssertionError(f"flip at {pos} accepted")


def test_original_still_opens_after_all_those_attempts() -> None:
    assert _B.decrypt(_ENV).text == "the one true message"


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=600))
def test_parser_only_raises_e2ee_errors(raw: bytes) -> None:
    with contextlib.suppress(E2EEError):
        parse_envelope(raw)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=70_000))
def test_pad_unpad(data: bytes) -> None:
    if len(data) >= 65536:
        with pytest.raises(E2EEError, match="bad_length"):
            pad(data)
        return
    padded = pad(data)
    assert len(padded) == bucket_for(len(data))
    assert len(padded) // 2 < len(data) + 1 or len(padded) == 256
    assert unpad(padded) == data


def test_safety_code_order_independent() -> None:
    room_id, members = make_room(4)
    cards = [m.card for m in members]
    codes = {safety_code(room_id, 5, perm) for perm in itertools.permutations(cards)}
    assert len(codes) == 1
