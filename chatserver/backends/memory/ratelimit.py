"""In-process RateLimiter: one token bucket per key, on this node only."""

from __future__ import annotations

from chatserver.token_bucket import TokenBucket


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
