"""Presence on Redis: holders per room (same slot as the room) and one global deadline index."""

from __future__ import annotations

from chatserver.backends.redis.conn import AnyRedis, Keys, backend_errors, lua_script

_CLAIM = lua_script("presence_claim")


class RedisPresence:
    """`<prefix>:{room}:holders` maps member to node; `<prefix>:presence` orders seats by deadline.

    Both expire as a room's keys do (`keep_s` after the last touch): when every node is gone,
    nothing of a seat stays in Redis past that."""

    def __init__(self, redis: AnyRedis, keys: Keys, keep_s: float) -> None:
        self._redis = redis
        self._keys = keys
        self._deadlines = keys.global_("presence")
        self._keep_ms = int(keep_s * 1000)
        self._claim = redis.register_script(_CLAIM)

    async def touch(self, room_id: str, member_id: str, node_id: str, deadline: float) -> None:
        # Every join and resume waits on this: one round trip, not four.
        await self.touch_many([(room_id, member_id)], node_id, deadline)

    async def touch_many(self, seats: list[tuple[str, str]], node_id: str, deadline: float) -> None:
        """One pipeline for a whole heartbeat: a HSET and PEXPIRE per room, one ZADD for all."""
        if not seats:
            return
        by_room: dict[str, list[str]] = {}
        for room_id, member_id in seats:
            by_room.setdefault(room_id, []).append(member_id)
        async with backend_errors():
            pipe = self._redis.pipeline(transaction=False)
            for room_id, members in by_room.items():
                holders = self._keys.room(room_id, "holders")
                pipe.hset(holders, mapping=dict.fromkeys(members, node_id))
                pipe.pexpire(holders, self._keep_ms)
            pipe.zadd(self._deadlines, {f"{r}|{m}": deadline for r, m in seats})
            pipe.pexpire(self._deadlines, self._keep_ms)
            await pipe.execute()

    async def holder(self, room_id: str, member_id: str) -> str | None:
        async with backend_errors():
            node = await self._redis.hget(self._keys.room(room_id, "holders"), member_id)
        return node.decode() if node else None

    async def remove(self, room_id: str, member_id: str) -> None:
        async with backend_errors():
            pipe = self._redis.pipeline(transaction=False)
            pipe.hdel(self._keys.room(room_id, "holders"), member_id)
            pipe.zrem(self._deadlines, f"{room_id}|{member_id}")
            await pipe.execute()

    async def claim_expired(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        claimed = []
        async with backend_errors():
            lapsed = await self._redis.zrangebyscore(
                self._deadlines, "-inf", now, start=0, num=limit
            )
            for entry in lapsed:
                if await self._claim(keys=[self._deadlines], args=[entry, now]):
                    room_id, member_id = entry.decode().split("|", 1)
                    await self._redis.hdel(self._keys.room(room_id, "holders"), member_id)
                    claimed.append((room_id, member_id))
        return claimed
