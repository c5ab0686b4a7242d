"""The token bucket: the gateway's per-connection limits, and the state of each key of the memory
RateLimiter (`chatserver.backends.memory.ratelimit`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """`burst` tokens, refilled at `rate_per_s`; `take` answers how long to wait (0.0 = allowed)."""

    rate_per_s: float
    burst: int
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> float:
        if self.tokens < 0:
            self.tokens, self.updated = float(self.burst), now
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate_per_s)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        if self.rate_per_s <= 0:
            return float("inf")
        return (cost - self.tokens) / self.rate_per_s
