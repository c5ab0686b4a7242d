"""The type-1 body profile (docs/e2ee.md section 6, "Body profile"; I-JSON, RFC 7493).

tests/vectors/body_profile.json is shared with web/test/body_profile.test.mjs: both clients
must give the same verdict (and the same text) for every case. Nothing but E2EEError may ever
leave RoomCrypto.decrypt, whatever it is given.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatserver.e2ee import E2EEError, RoomCrypto, decode_text, encode_text
from chatserver.e2ee.constants import (
    KEY_LEN,
    MAX_BODY_LEN,
    MAX_JSON_DEPTH,
    MAX_SAFE_INTEGER,
)
from chatserver.e2ee.envelope import make_ctx, seal_padded
from chatserver.e2ee.padding import pad
from chatserver.e2ee.payload import franking_commitment, parse_text_body

from .helpers import T0, ManualSender, flip, make_room, send

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "vectors" / "body_profile.json").read_text("utf-8")
)


def code_of(fn: Any) -> str:
    with pytest.raises(E2EEError) as e:
        fn()
    return e.value.code


def verdict(body: bytes) -> str:
    """ "ok" or the E2EEError code; any other exception propagates and fails the test."""
    try:
        decode_text(body)
    except E2EEError as exc:
        return exc.code
    return "ok"


def test_vector_file_covers_the_rules() -> None:
    assert len(VECTORS) >= 25
    names = {v["name"] for v in VECTORS}
    assert len(names) == len(VECTORS)
    for must in (
        "max safe integer",
        "2^53",
        "negative zero",
        "float 1e308",
        "float 1e309",
        "depth 16",
        "depth 17",
        "depth 2000",
        "leading BOM",
        "NaN",
        "duplicate text",
        "lone high surrogate escape",
        "invalid UTF-8 byte ff",
        "top-level array",
        "missing text",
        "text is a number",
        "extra keys cw and quote",
        "5000-digit integer",
    ):
        assert must in names, must
    assert {v["valid"] for v in VECTORS} == {True, False}


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_verdict(v: dict[str, Any]) -> None:
    body = bytes.fromhex(v["body_hex"])
    if v["valid"]:
        assert decode_text(body) == v["text"]
    else:
        assert code_of(lambda: decode_text(body)) == "malformed"


@pytest.fixture(scope="module")
def room() -> tuple[RoomCrypto, ManualSender]:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    return b, a


_next_index = iter(range(10_000))


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_through_decrypt(v: dict[str, Any], room: tuple[RoomCrypto, ManualSender]) -> None:
    """The same verdict end to end; a refused body burns no key and wedges nothing."""
    b, a = room
    body = bytes.fromhex(v["body_hex"])
    env = a.envelope(next(_next_index), body)
    if v["valid"]:
        assert b.decrypt(env).text == v["text"]
    else:
        assert code_of(lambda: b.decrypt(env)) == "malformed"
    ok = a.envelope(next(_next_index))
    assert b.decrypt(ok).text == "x"


def _envelope_with_ts(a: ManualSender, index: int, ts: int) -> bytes:
    """A sender that writes any u64 client_ts_ms (RoomCrypto and franked_body refuse to)."""
    fbody = bytes([1]) + ts.to_bytes(8, "big") + b'{"text":"ts"}'
    ctx = make_ctx(a.room_id, a.identity.member_id, a.epoch, a.key_id, index)
    kf = b"k" * KEY_LEN
    return seal_padded(
        a.identity,
        room_id=a.room_id,
        epoch=a.epoch,
        key_id=a.key_id,
        index=index,
        mk=a.mk(index),
        salt=b"s" * 16,
        franking_commit=franking_commitment(kf, ctx, fbody),
        padded=pad(kf + fbody),
    )


@pytest.mark.parametrize(
    ("ts", "ok"), [(MAX_SAFE_INTEGER, True), (2**53, False), (2**64 - 1, False)]
)
def test_client_ts_must_be_below_2_53(ts: int, ok: bool) -> None:
    _, (b,) = make_room(1)
    a = ManualSender(b.room_id)
    a.join(b)
    env = _envelope_with_ts(a, 0, ts)
    if ok:
        assert b.decrypt(env).client_ts_ms == ts
    else:
        assert code_of(lambda: b.decrypt(env)) == "malformed"
        assert b.decrypt(_envelope_with_ts(a, 0, T0)).client_ts_ms == T0  # key not burnt


def test_sender_refuses_what_receivers_refuse() -> None:
    _, (a, _b) = make_room(2)
    assert code_of(lambda: a.encrypt(b'{"text":"a","text":"b"}')) == "malformed"
    assert code_of(lambda: a.encrypt(b'{"text":"x","n":9007199254740992}')) == "malformed"
    assert code_of(lambda: a.encrypt("\ud800")) == "malformed"
    assert code_of(lambda: encode_text("x", n=float("nan"))) == "malformed"
    assert code_of(lambda: a.encrypt(encode_text("x", n=2**53))) == "malformed"
    a.encrypt(encode_text("x", cw="cw", quote={"seq": 1, "text": "q"}))
    a.encrypt(b"\xff not json", msg_type=2)  # other types stay opaque


def test_depth_limit_is_exact() -> None:
    def nested(depth: int) -> bytes:
        k = depth - 1
        return ('{"text":"d","n":' + "[" * k + "]" * k + "}").encode()

    assert decode_text(nested(MAX_JSON_DEPTH)) == "d"
    assert code_of(lambda: decode_text(nested(MAX_JSON_DEPTH + 1))) == "malformed"


def test_proto_and_ordinary_names_are_plain_members() -> None:
    obj = parse_text_body(b'{"text":"t","__proto__":1,"constructor":[],"a":{"b":null}}')
    assert obj == {"text": "t", "__proto__": 1, "constructor": [], "a": {"b": None}}


# --- garbage of every kind ---------------------------------------------------------------

HOSTILE_BODIES: list[bytes] = [
    b"[" * MAX_BODY_LEN,
    b'{"text":"a","n":' + b"[" * 60_000,
    b'{"text":"a","n":' + b'{"a":' * 10_000,
    b'{"text":"a","n":' + b"9" * 60_000 + b"}",
    b'{"text":"a","n":-' + b"1" * 5_000 + b"e99999}",
    b'{"text":"a","n":1e' + b"9" * 5_000 + b"}",
    b'{"text":"a","n":0.' + b"0" * 5_000 + b"1}",
    b'{"text":"a","n":NaN}',
    b'{"text":"a","n":-Infinity}',
    b'{"text":"\\ud800"}',
    b'{"text":"\\uDFFF\\uD800"}',
    b'{"text":"' + b"\\u" * 1000 + b'"}',
    b'{"text":"a"' + b',"k":1' * 2 + b"}",
    b'{"text":"' + b"a" * 60_000,
    b"\xef\xbb\xbf{}",
    b"\xed\xb2\x80",
    b"\x00" * 100,
    bytes(range(256)),
    b"",
    b"{",
    b'{"text"',
    b'{"text":',
    b'{"text":"\\',
    b'{"text":"\\u00',
    b'{"text":"\\ud800\\u',
    b'{"text":1.',
    b'{"text":-',
    b'{"text":t',
]


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
def test_hostile_bodies_are_malformed(body: bytes, room: tuple[RoomCrypto, ManualSender]) -> None:
    b, a = room
    assert code_of(lambda: decode_text(body)) == "malformed"
    if len(body) <= MAX_BODY_LEN:
        env = a.envelope(next(_next_index), body)
        assert code_of(lambda: b.decrypt(env)) == "malformed"
    assert b.decrypt(a.envelope(next(_next_index))).text == "x"


def test_decrypt_raises_only_e2ee_errors_for_any_garbage() -> None:
    _, (a, b) = make_room(2)
    env = send(a, [b], "the message")
    garbage: list[Any] = [
        None,
        0,
        -1,
        1.5,
        "text",
        "\x01\x01" + "x" * 500,
        [1, 2, 3],
        {"a": 1},
        object(),
        b"",
        b"\x01",
        b"\x01\x01",
        bytearray(env[:200]),
        memoryview(env)[:300],
        env[:-1],
        env + b"\x00",
        env[:130] + b"\x00" * (len(env) - 130),
        os.urandom(len(env)),
        b"\x01\x01" + os.urandom(len(env) - 2),
        b"\xff" * 70_000,
    ]
    garbage += [flip(env, i, m) for i in range(0, len(env), 7) for m in (0x01, 0x80)]
    for g in garbage:
        try:
            b.decrypt(g)
        except E2EEError:
            pass
        else:  # pragma: no cover - a garbage input that opens would be a bug of its own
            raise AssertionError(f"garbage opened: {g!r:.60}")
    assert b.decrypt(env).text == "the message"  # nothing was burnt or wedged


# --- differential checks -----------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4)
    ),
    max_leaves=40,
)


def _in_profile(value: Any, depth: int) -> bool:
    """Expected verdict for what json.dumps wrote: finite floats, safe integers, depth <= 16."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return abs(value) <= MAX_SAFE_INTEGER
    if isinstance(value, float):
        return math.isfinite(value)
    if depth + 1 > MAX_JSON_DEPTH:
        return False
    items = value.values() if isinstance(value, dict) else value
    return all(_in_profile(v, depth + 1) for v in items)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, text=st.text(max_size=20))
def test_profile_agrees_with_json(value: Any, text: str) -> None:
    """The profile accepts exactly the in-profile documents, and reads them as json.loads does."""
    raw = json.dumps({"text": text, "v": value}, ensure_ascii=bool(len(text) % 2)).encode()
    got: Any = None
    try:
        got = parse_text_body(raw)
    except E2EEError as exc:
        code = exc.code
    else:
        code = "ok"
    assert code == ("ok" if _in_profile(value, 1) else "malformed")
    if code == "ok":
        assert got == json.loads(raw)


@settings(max_examples=500)
@given(raw=st.binary(max_size=300))
def test_any_bytes_give_a_verdict(raw: bytes) -> None:
    assert verdict(raw) in {"ok", "malformed"}


@settings(max_examples=300)
@given(data=st.data())
def test_mutated_bodies_give_a_verdict(data: st.DataObject) -> None:
    base = bytearray(b'{"text":"h\\u00e9\\ud83d\\ude00","n":[1,-0.5e3,true,null],"o":{"k":"v"}}')
    for _ in range(data.draw(st.integers(1, 4))):
        base[data.draw(st.integers(0, len(base) - 1))] = data.draw(st.integers(0, 255))
    assert verdict(bytes(base)) in {"ok", "malformed"}
