"""Token buckets: the per-connection limiter and the memory implementation of the RateLimiter port."""

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


class MemoryRateLimiter:
    """Node-local buckets; full buckets are forgotten so idle keys cost nothing."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, rate_per_s: float, burst: int, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._forget_full(now)
            bucket = self._buckets[key] = TokenBucket(rate_per_s, burst)
        return bucket.take(now)

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * bucket.rate_per_s >= bucket.burst:
                del self._buckets[key]
