"""Server-to-client websocket frames built once, and the fan-out counters kept beside them.

A server frame is never masked (RFC 6455, 5.1), so the bytes of a broadcast's frame are the same for
every recipient: build them once and write them to every transport.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack
TEXT, BINARY = 0x1, 0x2

# Upper bounds (seconds) of the fan-out latency histogram: time to frame one broadcast and write it
# to every local recipient.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
)


def ws_frame(payload: bytes | str) -> bytes:
    """One final, unmasked websocket frame: binary for bytes, text for str."""
    if isinstance(payload, str):
        data, opcode = payload.encode(), TEXT
    else:
        data, opcode = bytes(payload), BINARY
    n = len(data)
    first = 0x80 | opcode
    if n < 126:
        return bytes((first, n)) + data
    if n < 65536:
        return _LEN2(first, 126, n) + data
    return _LEN8(first, 127, n) + data


def frame_packet(pkt: Any) -> bytes:
    """The websocket frame of one engine.io packet."""
    return ws_frame(pkt.encode())


@dataclass
class FanoutStats:
    """Counters of the direct-write path, read by /metrics at scrape time."""

    slow_consumers: int = 0
    dropped: int = 0  # packets for a connection that is closing, closed or over its bound
    broadcasts: int = 0
    written: int = 0  # frames written by broadcasts
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe(self, seconds: float, written: int) -> None:
        self.broadcasts += 1
        self.written += written
        self.latency_sum += seconds
        self.latency_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
