"""RoomStore on Redis: each room is a msgpack blob with a version, written by compare-and-set."""

from __future__ import annotations

import msgspec

from chatserver.ports import Versioned
from chatserver.redis_conn import AnyRedis, Keys, backend_errors
from rooms import Room, Visibility

# KEYS[1] = state hash; ARGV = expected version ("" = must not exist), blob, keep_ms
_SAVE = """
local current = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if current then return 0 end
elseif current ~= ARGV[1] then
  return 0
end
local version = (tonumber(current) or 0) + 1
redis.call('HSET', KEYS[1], 'v', version, 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return version
"""

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Room)


class RedisRoomStore:
    """Room state in `<prefix>:{room}:state`; directory and deadline indexes in two global keys."""

    def __init__(self, redis: AnyRedis, keys: Keys, keep_s: float) -> None:
        self._redis = redis
        self._keys = keys
        self._keep_ms = int(keep_s * 1000)
        self._save = redis.register_script(_SAVE)
        self._listed = keys.global_("listed")
        self._due = keys.global_("due")

    async def load(self, room_id: str) -> Versioned | None:
        async with backend_errors():
            version, blob = await self._redis.hmget(self._keys.room(room_id, "state"), ["v", "d"])
        if version is None or blob is None:
            return None
        return Versioned(_decoder.decode(blob), int(version))

    async def save(self, room: Room, expected_version: int | None, due_at: float) -> bool:
        expected = "" if expected_version is None else str(expected_version)
        async with backend_errors():
            written = await self._save(
                keys=[self._keys.room(room.room_id, "state")],
                args=[expected, _encoder.encode(room), self._keep_ms],
            )
            if not written:
                return False
            # The indexes are hints (checked against the state on use), so they need no atomicity.
            if room.visibility is Visibility.listed:
                await self._redis.sadd(self._listed, room.room_id)
                await self._redis.pexpire(self._listed, self._keep_ms)
            await self._redis.zadd(self._due, {room.room_id: due_at})
            # The indexes outlive any room they name, and nothing longer.
            await self._redis.pexpire(self._due, self._keep_ms)
        return True

    async def delete(self, room_id: str) -> None:
        async with backend_errors():
            await self._redis.delete(self._keys.room(room_id, "state"))
            await self._redis.srem(self._listed, room_id)
            await self._redis.zrem(self._due, room_id)

    async def listed(self) -> list[Room]:
        async with backend_errors():
            ids = [i.decode() for i in await self._redis.smembers(self._listed)]
            rooms = []
            for room_id in ids:
                current = await self.load(room_id)
                if current is None:
                    await self._redis.srem(self._listed, room_id)
                else:
                    rooms.append(current.room)
        return rooms

    async def due(self, now: float) -> list[str]:
        async with backend_errors():
            ids = await self._redis.zrangebyscore(self._due, "-inf", now, start=0, num=500)
        return [i.decode() for i in ids]
