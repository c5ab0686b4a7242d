"""RateLimiter on Redis: a token bucket per key, updated atomically by one script."""

from __future__ import annotations

from chatserver.backends.redis.conn import AnyRedis, Keys, backend_errors, lua_script

_HIT = lua_script("rate_hit")


class RedisRateLimiter:
    """Cluster-wide buckets; a bucket's key expires once it would be full again."""

    def __init__(self, redis: AnyRedis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._hit = redis.register_script(_HIT)

    async def hit(self, key: str, rate_per_s: float, burst: int, now: float) -> float:
        async with backend_errors():
            wait = await self._hit(
                keys=[self._keys.global_(f"rl:{{{key}}}")], args=[rate_per_s, burst, now]
            )
        return float(wait)
