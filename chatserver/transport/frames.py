"""Websocket frames: the server's built once, the clients' read; the fan-out counters beside them.

A server frame is never masked (RFC 6455, 5.1), so the bytes of a broadcast's frame are the same for
every recipient: build them once and write them to every transport.

A client frame is always masked, and a message may come in fragments. `FrameReader` is the reading
half of RFC 6455 (section 5) for a server that negotiates no extension and no subprotocol: it
unmasks, reassembles fragments, bounds every message by `max_size` before buffering it, and refuses
what the RFC says a server must refuse (unmasked frames, reserved bits or opcodes, fragmented or
oversized control frames, a continuation out of place) with the close code to send.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack
_CODE = struct.Struct("!H").pack
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NO_MASK = b"\x00\x00\x00\x00"

# Close codes of RFC 6455 (7.4.1) the reader answers with.
NORMAL_CLOSURE = 1000
PROTOCOL_ERROR = 1002
INVALID_DATA = 1007  # a text message that is not UTF-8
MESSAGE_TOO_BIG = 1009

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


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A close, ping or pong frame (at most 125 bytes of payload, RFC 6455 5.5)."""
    return bytes((0x80 | opcode, len(payload))) + payload[:125]


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with a status code and a short reason."""
    return control_frame(CLOSE, _CODE(code) + reason.encode()[:123])


def unmask(key: bytes, data: bytes | bytearray) -> bytes:
    """A client frame's payload XORed with its 4-byte masking key (RFC 6455 5.3)."""
    n = len(data)
    if not n or key == NO_MASK:
        return bytes(data)
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")


class FrameError(Exception):
    """The client broke RFC 6455: close the websocket with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class FrameReader:
    """Client frames in, whole messages and control frames out: `feed(data)` returns the
    `(opcode, payload)` of each one completed by `data` (payloads unmasked, fragments joined).

    Holds nothing between messages: the partial-frame buffer exists only while a frame is
    incomplete, and a fragmented message's parts only until its last fragment. A frame header
    announcing more than `max_size` (or a message growing past it) raises `FrameError` at once,
    before its payload is buffered.
    """

    __slots__ = ("_buf", "_parts", "_parts_opcode", "_parts_size", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf: bytearray | None = None
        self._parts: list[bytes] | None = None
        self._parts_opcode = 0
        self._parts_size = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf: bytes | bytearray
        if self._buf is None:
            buf = data
        else:
            self._buf += data
            buf = self._buf
        out: list[tuple[int, bytes]] = []
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            if b0 & 0x70:
                raise FrameError(PROTOCOL_ERROR, "reserved bits set")
            if not b1 & 0x80:
                raise FrameError(PROTOCOL_ERROR, "unmasked frame")
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            n = b1 & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            if opcode >= CLOSE:
                if opcode > PONG:
                    raise FrameError(PROTOCOL_ERROR, "reserved opcode")
                if not fin or n > 125:
                    raise FrameError(PROTOCOL_ERROR, "bad control frame")
            elif opcode > BINARY:
                raise FrameError(PROTOCOL_ERROR, "reserved opcode")
            elif opcode == CONTINUATION:
                if self._parts is None:
                    raise FrameError(PROTOCOL_ERROR, "continuation out of place")
                if self._parts_size + n > self.max_size:
                    raise FrameError(MESSAGE_TOO_BIG, "message too big")
            else:
                if self._parts is not None:
                    raise FrameError(PROTOCOL_ERROR, "new message inside a fragmented one")
                if n > self.max_size:
                    raise FrameError(MESSAGE_TOO_BIG, "message too big")
            end = start + 4 + n
            if end > size:
                break
            payload = unmask(bytes(buf[start : start + 4]), buf[start + 4 : end])
            pos = end
            if opcode >= CLOSE:
                out.append((opcode, payload))
            elif opcode == CONTINUATION:
                assert self._parts is not None
                self._parts.append(payload)
                self._parts_size += n
                if fin:
                    out.append((self._parts_opcode, b"".join(self._parts)))
                    self._parts = None
            elif fin:
                out.append((opcode, payload))
            else:
                self._parts, self._parts_opcode, self._parts_size = [payload], opcode, n
        if pos >= size:
            self._buf = None
        elif self._buf is None:
            self._buf = bytearray(memoryview(buf)[pos:])
        elif pos:
            del self._buf[:pos]
        return out


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
