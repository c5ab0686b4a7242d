"""Length hiding: ISO/IEC 7816-4 style padding (0x80 then zeros) to fixed buckets.

The server and any observer see only the bucket, so a 3-word message and a
200-byte one look the same. Powers of two cost at most 2x; below 256 bytes
(every chat line) they cost nothing extra in distinguishability.
"""

from __future__ import annotations

from .constants import BUCKETS
from .errors import E2EEError


def bucket_for(length: int) -> int:
    """Smallest bucket that holds ``length`` bytes plus the 0x80 marker."""
    for size in BUCKETS:
        if length + 1 <= size:
            return size
    raise E2EEError("bad_length", "payload exceeds the largest bucket")


def pad_to(data: bytes, size: int) -> bytes:
    if len(data) + 1 > size:
        raise E2EEError("bad_length", "payload larger than its pad target")
    return data + b"\x80" + bytes(size - len(data) - 1)


def pad(data: bytes) -> bytes:
    return pad_to(data, bucket_for(len(data)))


def unpad(padded: bytes) -> bytes:
    """Strip the padding; the last non-zero byte must be exactly 0x80.

    Runs over public-length data after AEAD authentication, so the early exit
    leaks nothing an attacker did not already choose.
    """
    stripped = padded.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise E2EEError("padding", "no 0x80 marker")
    return stripped[:-1]
