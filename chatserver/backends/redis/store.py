"""RoomStore on Redis: each room is a msgpack blob with a version, written by compare-and-set.

Every message checks the sender against the room (`RoomService.check`), so loads are hot: a node
keeps the rooms it decoded, and a load fetches the blob only when the version moved (one round
trip either way; a 100-member room is a ~20 KB blob to transfer and decode otherwise). A copy
is kept at most `CACHE_TTL_S` after its last use, so nothing of an ended room stays in a node's
memory for long.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import msgspec

from chatserver.backends.redis.conn import AnyRedis, Keys, backend_errors, lua_script
from chatserver.ports import Versioned
from rooms import Room, Visibility

_SAVE = lua_script("store_save")
_LOAD_IF_CHANGED = lua_script("store_load_if_changed")

CACHED_ROOMS = 256  # decoded rooms a node keeps (least recently used dropped first)
CACHE_TTL_S = 60.0  # and for at most this long after their last use

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Room)


class RedisRoomStore:
    """Room state in `<prefix>:{room}:state`; directory and deadline indexes in two global keys."""

    def __init__(self, redis: AnyRedis, keys: Keys, keep_s: float) -> None:
        self._redis = redis
        self._keys = keys
        self._keep_ms = int(keep_s * 1000)
        self._save = redis.register_script(_SAVE)
        self._load_if_changed = redis.register_script(_LOAD_IF_CHANGED)
        self._cache: OrderedDict[str, tuple[Versioned, float]] = OrderedDict()
        self._listed = keys.global_("listed")
        self._due = keys.global_("due")

    async def load(self, room_id: str) -> Versioned | None:
        key = self._keys.room(room_id, "state")
        self._forget_stale()
        entry = self._cache.get(room_id)
        cached = entry[0] if entry is not None else None
        async with backend_errors():
            if cached is None:
                version, blob = await self._redis.hmget(key, ["v", "d"])
            else:
                found = await self._load_if_changed(keys=[key], args=[str(cached.version)])
                version, blob = [*found, None, None][:2]
        if version is None:
            self._cache.pop(room_id, None)
            return None
        if blob is None:
            if cached is None or int(version) != cached.version:
                return None  # written without its blob: never by this store
            return self._remember(room_id, cached)  # unchanged: the same immutable Room
        return self._remember(room_id, Versioned(_decoder.decode(blob), int(version)))

    def _remember(self, room_id: str, current: Versioned) -> Versioned:
        self._cache[room_id] = (current, time.monotonic())
        self._cache.move_to_end(room_id)
        while len(self._cache) > CACHED_ROOMS:
            self._cache.popitem(last=False)
        return current

    def _forget_stale(self) -> None:
        """Drop copies unused for `CACHE_TTL_S` (the oldest use is first)."""
        horizon = time.monotonic() - CACHE_TTL_S
        while self._cache:
            room_id, (_, used) = next(iter(self._cache.items()))
            if used > horizon:
                return
            del self._cache[room_id]

    async def save(self, room: Room, expected_version: int | None, due_at: float) -> bool:
        expected = "" if expected_version is None else str(expected_version)
        async with backend_errors():
            written = await self._save(
                keys=[self._keys.room(room.room_id, "state")],
                args=[expected, _encoder.encode(room), self._keep_ms],
            )
            if not written:
                return False
            self._remember(room.room_id, Versioned(room, int(written)))
            # The indexes are hints (checked against the state on use), so they need no atomicity.
            if room.visibility is Visibility.listed:
                await self._redis.sadd(self._listed, room.room_id)
                await self._redis.pexpire(self._listed, self._keep_ms)
            await self._redis.zadd(self._due, {room.room_id: due_at})
            # The indexes outlive any room they name, and nothing longer.
            await self._redis.pexpire(self._due, self._keep_ms)
        return True

    async def delete(self, room_id: str) -> None:
        self._cache.pop(room_id, None)
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
        self._forget_stale()  # the sweeper calls this every second, even on an idle node
        async with backend_errors():
            ids = await self._redis.zrangebyscore(self._due, "-inf", now, start=0, num=500)
        return [i.decode() for i in ids]
