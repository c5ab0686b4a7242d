"""What goes inside the AEAD, and the franking commitment over it.

payload = k_f(32) || franked_body, franked_body = u8 type || u64 client_ts_ms || body.
The franking commitment covers the whole franked body (type and client time
included) plus the envelope context, so a reporter cannot re-attribute a
body to another message, sender, chain or index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import KEY_LEN, PAYLOAD_PREFIX_LEN, U64_MAX, ds
from .errors import E2EEError
from .primitives import hmac_sha256


def franked_body(msg_type: int, client_ts_ms: int, body: bytes) -> bytes:
    """``u8 type || u64 client_ts_ms || body``: what franking commits to."""
    if not 0 <= msg_type <= 0xFF or not 0 <= client_ts_ms <= U64_MAX:
        raise E2EEError("malformed", "type is u8, client_ts_ms is u64")
    return bytes([msg_type]) + client_ts_ms.to_bytes(8, "big") + body


def parse_franked_body(data: bytes) -> tuple[int, int, bytes]:
    """Inverse of :func:`franked_body`: ``(msg_type, client_ts_ms, body)``."""
    if len(data) < 9:
        raise E2EEError("malformed", "franked body too short")
    return data[0], int.from_bytes(data[1:9], "big"), data[9:]


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
