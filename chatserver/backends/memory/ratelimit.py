"""In-process RateLimiter: one token bucket per key, on this node only."""

from __future__ import annotations

from collections.abc import Sequence

from chatserver.ports import Quota
from chatserver.token_bucket import TokenBucket


class MemoryRateLimiter:
    """Node-local buckets; full buckets are forgotten so idle keys cost nothing."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, rate_per_s: float, burst: int, now: float) -> float:
        return self._bucket(key, rate_per_s, burst, now).take(now)

    def take_all(self, scope: str, quotas: Sequence[Quota], now: float) -> tuple[str | None, float]:
        """One token from each quota's bucket (keyed under `scope`), or none if any is empty:
        (None, 0.0), or the first empty quota's name and the wait until every one has a token."""
        buckets = [self._bucket(f"{scope}|{q.key}", q.rate_per_s, q.burst, now) for q in quotas]
        waits = [_wait_for_one(b, now) for b in buckets]
        if any(waits):
            first = next(q.name for q, w in zip(quotas, waits, strict=True) if w > 0)
            return first, max(waits)
        for bucket in buckets:
            bucket.take(now)
        return None, 0.0

    def _bucket(self, key: str, rate_per_s: float, burst: int, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._forget_full(now)
            bucket = self._buckets[key] = TokenBucket(rate_per_s, burst)
        return bucket

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * bucket.rate_per_s >= bucket.burst:
                del self._buckets[key]


def _wait_for_one(bucket: TokenBucket, now: float) -> float:
    """Seconds until the bucket holds a token, taking none (a take of nothing refills it)."""
    bucket.take(now, 0.0)
    if bucket.tokens >= 1:
        return 0.0
    return (1 - bucket.tokens) / bucket.rate_per_s if bucket.rate_per_s > 0 else float("inf")
