"""Input refused below the protocol: frames that are not Socket.IO, reserved event names, stray
namespaces and acks, connections that never say hello.

A client can send these as fast as its socket allows, so each is only counted (by a reason from this
fixed catalogue, exported at /metrics) and the log gets one summary line per interval at most, holding
the counts and never anything the client sent.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from enum import StrEnum

log = logging.getLogger("chatserver.refusals")

LOG_INTERVAL_S = 60.0


class Reason(StrEnum):
    BAD_FRAME = "bad_frame"  # not an Engine.IO or Socket.IO packet (bad msgpack, bad type, ...)
    RESERVED_EVENT = "reserved_event"  # `connect`, `disconnect`... sent as an ordinary event
    BAD_EVENT = "bad_event"  # an event packet without a string name
    NAMESPACE = "namespace"  # any namespace but "/"
    STRAY_ACK = "stray_ack"  # an ack for nothing the server asked
    NO_CONNECT = "no_connect"  # the websocket opened but no Socket.IO connect came in time
    PENDING_LIMIT = "pending_limit"  # too many such websockets from one address group


class Refusals:
    """Counts by reason; logs the first refusal, then at most one summary per interval."""

    def __init__(self, interval_s: float = LOG_INTERVAL_S) -> None:
        self.counts: Counter[str] = Counter()
        self._interval_s = interval_s
        self._next_log = 0.0
        self._unlogged = 0

    def refuse(self, reason: Reason) -> None:
        self.counts[reason.value] += 1
        self._unlogged += 1
        now = time.monotonic()
        if now < self._next_log:
            return
        self._next_log = now + self._interval_s
        log.warning(
            "input refused",
            extra={
                "reason": reason.value,
                "since_last": self._unlogged,
                "totals": dict(self.counts),
            },
        )
        self._unlogged = 0
