"""RoomStore on Redis: each room is a msgpack blob with a version, written by compare-and-set in
one script with the events that announce the change (commit.lua), so every node sees one order.

Every message checks the sender against the room (`RoomService.check`), so loads are hot: a node
keeps the rooms it decoded, and a load fetches the blob only when the version moved (one round
trip either way; a 100-member room is a ~20 KB blob to transfer and decode otherwise). A copy
is kept at most `CACHE_TTL_S` after its last use, so nothing of an ended room stays in a node's
memory for long.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence

import msgspec

from chatserver.backends.redis.bus import COMMIT, RedisRoomBus, encode
from chatserver.backends.redis.conn import AnyRedis, Keys, backend_errors, lua_script
from chatserver.ports import Versioned, WireEvent
from rooms import Room, Visibility

_LOAD = lua_script("store_load")

CACHED_ROOMS = 256  # decoded rooms a node keeps (least recently used dropped first)
CACHE_TTL_S = 60.0  # and for at most this long after their last use

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Room)


class RedisRoomStore:
    """Room state in `<prefix>:{room}:state`; directory and deadline indexes in two global keys.
    Commits append through `bus`'s room log (same keys, same bounds)."""

    def __init__(self, redis: AnyRedis, keys: Keys, keep_s: float, bus: RedisRoomBus) -> None:
        self._redis = redis
        self._keys = keys
        self._bus = bus
        self._keep_ms = int(keep_s * 1000)
        self._commit = redis.register_script(COMMIT)
        self._load = redis.register_script(_LOAD)
        self._cache: OrderedDict[str, tuple[Versioned, float]] = OrderedDict()
        self._listed = keys.global_("listed")
        self._due = keys.global_("due")

    async def load(self, room_id: str) -> Versioned | None:
        keys = [self._keys.room(room_id, "state"), self._keys.room(room_id, "meta")]
        self._forget_stale()
        entry = self._cache.get(room_id)
        cached = entry[0] if entry is not None else None
        held = "" if cached is None else str(cached.version)
        async with backend_errors():
            found = await self._load(keys=keys, args=[held])
        if not found:
            self._cache.pop(room_id, None)
            return None
        version, seq = int(found[0]), int(found[1])
        if len(found) == 2:
            if cached is None or version != cached.version:
                return None  # written without its blob: never by this store
            room = cached.room  # unchanged: the same immutable Room
        else:
            room = _decoder.decode(found[2])
        return self._remember(room_id, Versioned(room, version, seq))

    async def load_held(self, room_id: str) -> Versioned | None:
        """The decoded copy without a round trip: the message path checks a sender against it and
        its append names its version (append.lua refuses `stale_state` if it moved)."""
        entry = self._cache.get(room_id)
        if entry is None or entry[1] < time.monotonic() - CACHE_TTL_S:
            return await self.load(room_id)
        self._cache[room_id] = (entry[0], time.monotonic())
        self._cache.move_to_end(room_id)
        return entry[0]

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

    async def commit(
        self,
        room_id: str,
        room: Room | None,
        expected_version: int | None,
        due_at: float,
        events: Sequence[WireEvent] = (),
        *,
        set_epoch: int | None = None,
        keep: bool = False,
    ) -> int | None:
        mode = "keep" if keep else "delete" if room is None else "write"
        blob = _encoder.encode(room) if mode == "write" else b""
        async with backend_errors():
            reply = await self._commit(
                keys=[self._keys.room(room_id, "state"), *self._bus.log_keys(room_id)],
                args=[
                    "" if expected_version is None else str(expected_version),
                    mode,
                    blob,
                    self._keep_ms,
                    *self._bus.log_args(room_id),
                    "" if set_epoch is None else set_epoch,
                    *(encode(event) for event in events),
                ],
            )
            if len(reply) < 2:
                return None
            version, seq = int(reply[0]), int(reply[1])
            if mode == "keep":
                return seq
            # The indexes are hints (checked against the state on use): no atomicity needed, and
            # one round trip for all of them.
            indexes = self._redis.pipeline(transaction=False)
            if room is None:
                self._cache.pop(room_id, None)
                indexes.srem(self._listed, room_id)
                indexes.zrem(self._due, room_id)
            else:
                self._remember(room_id, Versioned(room, version, seq))
                if room.visibility is Visibility.listed:
                    indexes.sadd(self._listed, room_id)
                    indexes.pexpire(self._listed, self._keep_ms)
                indexes.zadd(self._due, {room_id: due_at})
                # The indexes outlive any room they name, and nothing longer.
                indexes.pexpire(self._due, self._keep_ms)
            await indexes.execute()
        return seq

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
