"""Denylist on Redis: one sorted set per list, scored by expiry time."""

from __future__ import annotations

from chatserver.backends.redis.conn import AnyRedis, Keys, backend_errors


class RedisDenylist:
    """`<prefix>:deny:<name>`; expired members are trimmed on every read."""

    def __init__(self, redis: AnyRedis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    def _key(self, name: str) -> str:
        return self._keys.global_(f"deny:{name}")

    async def add(self, name: str, item: str, expires_at: float) -> None:
        key = self._key(name)
        async with backend_errors():
            await self._redis.zadd(key, {item: expires_at})
            # The key lives as long as its longest-lived entry (GT: never shortened).
            await self._redis.expireat(key, int(expires_at) + 1, gt=True)
            if await self._redis.ttl(key) < 0:
                await self._redis.expireat(key, int(expires_at) + 1)

    async def remove(self, name: str, item: str) -> None:
        async with backend_errors():
            await self._redis.zrem(self._key(name), item)

    async def contains(self, name: str, item: str, now: float) -> bool:
        async with backend_errors():
            score = await self._redis.zscore(self._key(name), item)
        return score is not None and float(score) > now

    async def items(self, name: str, now: float) -> list[str]:
        key = self._key(name)
        async with backend_errors():
            await self._redis.zremrangebyscore(key, "-inf", now)
            members = await self._redis.zrange(key, 0, -1)
        return [m.decode() for m in members]
