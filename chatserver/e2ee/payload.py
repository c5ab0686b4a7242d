"""What goes inside the AEAD, and the franking commitment over it.

payload = k_f(32) || franked_body, franked_body = u8 type || u64 client_ts_ms || body.
The franking commitment covers the whole franked body (type and client time
included) plus the envelope context, so a reporter cannot re-attribute a
body to another message, sender, chain or index.

It also holds the body profile of type-1 (text) bodies (docs/e2ee.md section 6,
"Body profile"): a strict I-JSON (RFC 7493) parser, mirrored byte for byte by
``parseTextBody`` in web/src/e2ee/formats.ts so both clients give one verdict.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TypeAlias

from .constants import (
    KEY_LEN,
    MAX_JSON_DEPTH,
    MAX_NUMBER_LEN,
    MAX_SAFE_INTEGER,
    PAYLOAD_PREFIX_LEN,
    ds,
)
from .errors import E2EEError
from .primitives import hmac_sha256


def franked_body(msg_type: int, client_ts_ms: int, body: bytes) -> bytes:
    """``u8 type || u64 client_ts_ms || body``: what franking commits to.

    client_ts_ms is a u64 on the wire but must stay below 2^53, so that the
    browser (which holds it as a double) and Python read the same value.
    """
    if not 0 <= msg_type <= 0xFF or not 0 <= client_ts_ms <= MAX_SAFE_INTEGER:
        raise E2EEError("malformed", "type is u8, client_ts_ms is below 2^53")
    return bytes([msg_type]) + client_ts_ms.to_bytes(8, "big") + body


def parse_franked_body(data: bytes) -> tuple[int, int, bytes]:
    """Inverse of :func:`franked_body`: ``(msg_type, client_ts_ms, body)``."""
    if len(data) < 9:
        raise E2EEError("malformed", "franked body too short")
    ts = int.from_bytes(data[1:9], "big")
    if ts > MAX_SAFE_INTEGER:
        raise E2EEError("malformed", "client_ts_ms must be below 2^53")
    return data[0], ts, data[9:]


def franking_commitment(franking_key: bytes, ctx: bytes, fbody: bytes) -> bytes:
    """fc = HMAC-SHA256(k_f, DS("frank") || ctx || franked_body)."""
    if len(franking_key) != KEY_LEN:
        raise E2EEError("bad_length", "franking key must be 32 bytes")
    return hmac_sha256(franking_key, ds("frank") + ctx + fbody)


@dataclass(frozen=True)
class Payload:
    franking_key: bytes = field(repr=False)
    msg_type: int
    client_ts_ms: int
    body: bytes = field(repr=False)

    @property
    def franked(self) -> bytes:
        return franked_body(self.msg_type, self.client_ts_ms, self.body)


def encode_payload(p: Payload) -> bytes:
    if len(p.franking_key) != KEY_LEN:
        raise E2EEError("bad_length", "franking key must be 32 bytes")
    return p.franking_key + p.franked


def decode_payload(data: bytes) -> Payload:
    if len(data) < PAYLOAD_PREFIX_LEN:
        raise E2EEError("malformed", "payload too short")
    msg_type, ts, body = parse_franked_body(data[KEY_LEN:])
    return Payload(data[:KEY_LEN], msg_type, ts, body)


# --- type-1 body profile (I-JSON, RFC 7493) ------------------------------------------------

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"

_BOM = b"\xef\xbb\xbf"
_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_STR_CHUNK = re.compile(r'[^"\\\x00-\x1f]*')
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_LITERALS: tuple[tuple[str, JSONValue], ...] = (("true", True), ("false", False), ("null", None))


def _bad(detail: str) -> E2EEError:
    return E2EEError("malformed", f"type-1 body: {detail}")


class _Parser:
    """Recursive descent over RFC 8259 with the profile's extra rules; depth <= MAX_JSON_DEPTH."""

    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0

    def ws(self) -> None:
        m = _WS.match(self.s, self.i)
        assert m is not None  # the pattern matches the empty string
        self.i = m.end()

    def value(self, depth: int) -> JSONValue:
        s, i = self.s, self.i
        c = s[i : i + 1]
        if c == "{":
            return self.obj(depth + 1)
        if c == "[":
            return self.array(depth + 1)
        if c == '"':
            return self.string()
        for word, val in _LITERALS:
            if s.startswith(word, i):
                self.i = i + len(word)
                return val
        return self.number()

    def obj(self, depth: int) -> dict[str, JSONValue]:
        if depth > MAX_JSON_DEPTH:
            raise _bad(f"nested deeper than {MAX_JSON_DEPTH}")
        self.i += 1
        out: dict[str, JSONValue] = {}
        self.ws()
        if self.s[self.i : self.i + 1] == "}":
            self.i += 1
            return out
        while True:
            if self.s[self.i : self.i + 1] != '"':
                raise _bad("member name expected")
            key = self.string()
            if key in out:
                raise _bad("duplicate member name")
            self.ws()
            if self.s[self.i : self.i + 1] != ":":
                raise _bad("':' expected")
            self.i += 1
            self.ws()
            out[key] = self.value(depth)
            self.ws()
            c = self.s[self.i : self.i + 1]
            self.i += 1
            if c == "}":
                return out
            if c != ",":
                raise _bad("',' or '}' expected")
            self.ws()

    def array(self, depth: int) -> list[JSONValue]:
        if depth > MAX_JSON_DEPTH:
            raise _bad(f"nested deeper than {MAX_JSON_DEPTH}")
        self.i += 1
        out: list[JSONValue] = []
        self.ws()
        if self.s[self.i : self.i + 1] == "]":
            self.i += 1
            return out
        while True:
            out.append(self.value(depth))
            self.ws()
            c = self.s[self.i : self.i + 1]
            self.i += 1
            if c == "]":
                return out
            if c != ",":
                raise _bad("',' or ']' expected")
            self.ws()

    def hex4(self, at: int) -> int:
        if _HEX4.fullmatch(self.s, at, at + 4) is None:
            raise _bad("bad \\u escape")
        return int(self.s[at : at + 4], 16)

    def string(self) -> str:
        s = self.s
        i = self.i + 1
        parts: list[str] = []
        while True:
            m = _STR_CHUNK.match(s, i)
            assert m is not None
            parts.append(m.group())
            i = m.end()
            c = s[i : i + 1]
            if c == '"':
                self.i = i + 1
                return "".join(parts)
            if c != "\\":
                raise _bad("unterminated string or raw control character")
            e = s[i + 1 : i + 2]
            if e in _ESCAPES:
                parts.append(_ESCAPES[e])
                i += 2
                continue
            if e != "u":
                raise _bad("unknown escape")
            cp = self.hex4(i + 2)
            i += 6
            if 0xD800 <= cp <= 0xDBFF:
                lo = self.hex4(i + 2) if s[i : i + 2] == "\\u" else -1
                if not 0xDC00 <= lo <= 0xDFFF:
                    raise _bad("lone surrogate escape")
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                i += 6
            elif 0xDC00 <= cp <= 0xDFFF:
                raise _bad("lone surrogate escape")
            parts.append(chr(cp))

    def number(self) -> int | float:
        m = _NUMBER.match(self.s, self.i)
        if m is None:
            raise _bad("value expected")
        tok = m.group()
        self.i = m.end()
        if len(tok) > MAX_NUMBER_LEN:
            raise _bad(f"number literal over {MAX_NUMBER_LEN} characters")
        if not any(c in tok for c in ".eE"):
            if len(tok.lstrip("-")) > 16:  # at least 10^16 > 2^53 - 1: refuse unparsed
                raise _bad("integer beyond 2^53 - 1")
            n = int(tok)
            if abs(n) > MAX_SAFE_INTEGER:
                raise _bad("integer beyond 2^53 - 1")
            return n
        f = float(tok)
        if not math.isfinite(f):
            raise _bad("number beyond IEEE double range")
        if f == 0.0 and any(c in "123456789" for c in re.split("[eE]", tok)[0]):
            raise _bad("number underflows IEEE double")
        return f


def parse_text_body(body: bytes) -> dict[str, JSONValue]:
    """Parse a type-1 body under the body profile; any violation is ``malformed``.

    Never raises anything but :class:`E2EEError` (whatever the input), so a
    hostile sender cannot wedge a receiver with an unexpected exception.
    """
    try:
        return _parse_text_body(body)
    except E2EEError:
        raise
    except Exception as exc:  # defensive: the parser is bounded, but never leak another kind
        raise _bad("unparsable") from exc


def _parse_text_body(body: bytes) -> dict[str, JSONValue]:
    if body.startswith(_BOM):
        raise _bad("byte order mark")
    try:
        s = bytes(body).decode("utf-8")  # strict: no overlongs, no encoded surrogates
    except UnicodeDecodeError as exc:
        raise _bad("not UTF-8") from exc
    p = _Parser(s)
    p.ws()
    if s[p.i : p.i + 1] != "{":
        raise _bad("top level is not an object")
    obj = p.obj(1)
    p.ws()
    if p.i != len(s):
        raise _bad("trailing data")
    if not isinstance(obj.get("text"), str):
        raise _bad('needs a string "text"')
    return obj
