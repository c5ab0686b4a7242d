"""RateLimiter on Redis: a token bucket per key, updated atomically by one script."""

from __future__ import annotations

from chatserver.redis_conn import AnyRedis, Keys, backend_errors

# KEYS[1] = bucket hash; ARGV = rate, burst, now. Returns seconds to wait as a string ("0" = allowed).
_HIT = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or burst)
local updated = tonumber(redis.call('HGET', KEYS[1], 'u') or now)
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tokens, 'u', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


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
