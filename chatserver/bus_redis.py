"""RoomBus on Redis: one Lua script per append (order, guards, recovery stream, publish), a sharded
channel per room that a node subscribes to only while it holds members there, and a channel per node
for directed events.

The pub/sub listener never awaits a client socket (delivery only queues frames), never dies silently
(a supervisor reconnects with backoff and resubscribes), and after any interruption fills the gap
from the room's stream, so a node delivers each room's events once and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgpack
from redis.exceptions import RedisError

from chatserver.ports import (
    AppendRefused,
    BusEvents,
    BusUnavailable,
    Clock,
    Duplicate,
    EnvelopeGuard,
    WireEvent,
)
from chatserver.redis_conn import AnyRedis, Keys, backend_errors

log = logging.getLogger("chatserver.bus")

MAILBOX_MAX = 256
CLOSE_TIMEOUT_S = 2.0  # the longest `close` waits for the listener to stop

# KEYS: meta, log, chains, log sizes. ARGV: 1 channel, 2 blob, 3 now_ms, 4 ttl_ms, 5 maxlen,
# 6 set_epoch, 7 guard_epoch, 8 chain field, 9 index, 10 digest, 11 keep_ms, 12 the event's ts
# (returned to a retried duplicate), 13 max_bytes (the bound on the sum of the stream's blob
# lengths; absent: none).
# The buffer is bounded by count, bytes and age, oldest first. The meta hash's `bytes` is the sum
# of the stream's blob lengths, and the sizes list holds "ms:size" for each stream entry in the
# same order, so the oldest entry's age and size are known without reading its blob (which would
# double the cost of a large append); the stream is then trimmed to the count that stays.
_APPEND = """
local meta, stream, chains, sizes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local state = redis.call('HMGET', meta, 'epoch', 'ms', 'bytes')
local epoch = tonumber(state[1] or '0')
if ARGV[7] ~= '' then
  if epoch > 0 and tonumber(ARGV[7]) ~= epoch then return {'stale_epoch'} end
  local last = redis.call('HGET', chains, ARGV[8])
  if last then
    local idx, seq, ts, digest = string.match(last, '^(%d+):(%d+):(%d+):(.*)$')
    if tonumber(ARGV[9]) <= tonumber(idx) then
      if digest == ARGV[10] then return {'duplicate', tonumber(seq), tonumber(ts)} end
      return {'replay'}
    end
  end
end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
if ARGV[6] ~= '' and tonumber(ARGV[6]) > epoch then redis.call('HSET', meta, 'epoch', ARGV[6]) end
local ms = math.max(tonumber(ARGV[3]), tonumber(state[2] or '0'))
local len, bytes = redis.call('XLEN', stream), tonumber(state[3] or '0')
if len == 0 then
  bytes = 0  -- an expired stream (an idle room) took its bytes with it
  redis.call('DEL', sizes)
elseif redis.call('LLEN', sizes) ~= len then
  -- Not in step (a stream written before the sizes list existed): count the stream once.
  bytes = 0
  redis.call('DEL', sizes)
  for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+')) do
    local size = string.len(entry[2][2])
    redis.call('RPUSH', sizes, string.match(entry[1], '^(%d+)-') .. ':' .. size)
    bytes = bytes + size
  end
end
redis.call('XADD', stream, ms .. '-' .. seq, 'e', ARGV[2])
redis.call('RPUSH', sizes, ms .. ':' .. string.len(ARGV[2]))
len, bytes = len + 1, bytes + string.len(ARGV[2])
local maxlen = tonumber(ARGV[5])
local max_bytes = tonumber(ARGV[13]) or math.huge  -- a caller of the 12-argument form: no bound
local min_ms, dropped, within = tonumber(ARGV[3]) - tonumber(ARGV[4]), 0, false
-- Drop from the oldest while over a bound, reading the sizes list a few entries at a time.
while not within and len > 0 do
  local head = redis.call('LRANGE', sizes, dropped, dropped + 7)
  if #head == 0 then break end
  for _, item in ipairs(head) do
    local at, size = string.match(item, '^(%d+):(%d+)$')
    within = len <= maxlen and bytes <= max_bytes and tonumber(at) >= min_ms
    if within then break end
    bytes, len, dropped = bytes - tonumber(size), len - 1, dropped + 1
  end
end
if dropped > 0 then
  redis.call('LTRIM', sizes, dropped, -1)
  redis.call('XTRIM', stream, 'MAXLEN', len)
end
redis.call('HSET', meta, 'ms', ms, 'bytes', bytes)
if ARGV[7] ~= '' then
  redis.call('HSET', chains, ARGV[8], ARGV[9] .. ':' .. seq .. ':' .. ARGV[12] .. ':' .. ARGV[10])
  redis.call('PEXPIRE', chains, ARGV[11])
end
redis.call('PEXPIRE', meta, ARGV[11])
redis.call('PEXPIRE', stream, ARGV[4])
redis.call('PEXPIRE', sizes, ARGV[4])
redis.call('SPUBLISH', ARGV[1], seq .. ':' .. ARGV[2])
return {'ok', seq}
"""

# KEYS: meta, log. ARGV: after_seq, max_events, max_bytes (0: no bound). Returns {last seq,
# status, id, blob, id, blob...}: status 'ahead' (after_seq >= last: nothing, or the caller claims
# the future), 'gap' (after_seq + 1 is no longer in the stream) or 'ok' with the page. Entry ids
# are `ms-seq`, both parts non-decreasing, so the ms of entry after_seq + 1 is found by bisection
# over ms (about 17 probes for a 2-minute buffer) and the page is read forward from it: a page
# costs its own size, not the size of everything after it.
_SINCE = """
local meta, stream = KEYS[1], KEYS[2]
local last = tonumber(redis.call('HGET', meta, 'seq') or '0')
local want = tonumber(ARGV[1]) + 1
if want > last then return {last, 'ahead'} end
local function split(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
if not first then return {last, 'gap'} end
local lo, first_seq = split(first[1])
local hi, newest_seq = split(newest[1])
if first_seq > want or newest_seq < want then return {last, 'gap'} end
while lo < hi do
  local mid = math.floor((lo + hi + 1) / 2)
  local at, seq = split(redis.call('XRANGE', stream, mid .. '-0', '+', 'COUNT', 1)[1][1])
  if seq <= want then lo = at else hi = mid - 1 end
end
local max_events, max_bytes = tonumber(ARGV[2]), tonumber(ARGV[3])
local out, n, total, start = {last, 'ok'}, 0, 0, lo .. '-' .. want
while n < max_events do
  local batch = redis.call('XRANGE', stream, start, '+', 'COUNT', math.min(32, max_events - n))
  if #batch == 0 then break end
  for _, entry in ipairs(batch) do
    local _, seq = split(entry[1])
    if seq ~= want + n then return {last, 'gap'} end  -- a hole (seq and stream move together)
    local size = string.len(entry[2][2])
    if max_bytes > 0 and n > 0 and total + size > max_bytes then return out end
    table.insert(out, entry[1])
    table.insert(out, entry[2][2])
    n, total = n + 1, total + size
  end
  start = '(' .. batch[#batch][1]
end
return out
"""

# KEYS: mailbox, holders, mailbox index. ARGV: blob, maxlen, ttl_ms, member. Returns the holder
# node id or false. The index names every mailbox of the room, so `drop` can delete them all.
_DIRECT = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return redis.call('HGET', KEYS[2], ARGV[4])
"""


def encode(event: WireEvent) -> bytes:
    return msgpack.packb(event, use_bin_type=True)


def decode(blob: bytes) -> WireEvent:
    event: WireEvent = msgpack.unpackb(blob, raw=False)
    return event


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisRoomBus:
    """See the module docstring; `node_id` names this node's directed-event channel."""

    def __init__(
        self,
        redis: AnyRedis,
        keys: Keys,
        clock: Clock,
        node_id: str,
        buffer_ttl_s: float,
        buffer_max_events: int,
        keep_s: float,
        *,
        buffer_max_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._node_channel = keys.node_channel(node_id)
        self._ttl_ms = int(buffer_ttl_s * 1000)
        self._max = buffer_max_events
        self._max_bytes = buffer_max_bytes
        self._keep_ms = int(keep_s * 1000)
        self._append = redis.register_script(_APPEND)
        self._since = redis.register_script(_SINCE)
        self._direct = redis.register_script(_DIRECT)
        self._events: BusEvents | None = None
        self._ever_ready = False
        # Rooms this node holds, with the last sequence number delivered locally.
        self._rooms: dict[str, int] = {}
        self._channels: dict[bytes, str] = {}
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._healthy = False
        self._closing = False
        self.messages_read = 0  # pub/sub messages this node decoded (for tests and metrics)
        self.reconnects = 0

    def set_events(self, events: BusEvents) -> None:
        self._events = events

    async def restore(self, room_id: str, seq: int, epoch: int) -> None:
        meta = self._keys.room(room_id, "meta")
        async with backend_errors():
            if await self._redis.hsetnx(meta, "seq", seq):
                await self._redis.hset(meta, "epoch", epoch)
                await self._redis.pexpire(meta, self._keep_ms)

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._supervise())
        for _ in range(50):
            if self._healthy:
                return
            await asyncio.sleep(0.05)

    def healthy(self) -> bool:
        return self._healthy

    async def append(
        self,
        room_id: str,
        event: WireEvent,
        *,
        guard: EnvelopeGuard | None = None,
        set_epoch: int | None = None,
    ) -> int | Duplicate:
        k = self._keys
        args: list[Any] = [
            k.room_channel(room_id),
            encode(event),
            int(self._clock.now() * 1000),
            self._ttl_ms,
            self._max,
            "" if set_epoch is None else set_epoch,
            "" if guard is None else guard.epoch,
            "" if guard is None else f"{guard.sender_id}|{guard.key_id}",
            0 if guard is None else guard.index,
            "" if guard is None else guard.digest.hex(),
            self._keep_ms,
            int(event.get("ts", 0)),
            self._max_bytes,
        ]
        async with backend_errors():
            result = await self._append(
                keys=[
                    k.room(room_id, "meta"),
                    k.room(room_id, "log"),
                    k.room(room_id, "chains"),
                    k.room(room_id, "logsz"),
                ],
                args=args,
            )
        status = result[0].decode() if isinstance(result[0], bytes) else result[0]
        if status == "ok":
            return int(result[1])
        if status == "duplicate":
            return Duplicate(int(result[1]), int(result[2]))
        raise AppendRefused(status)

    async def since(
        self,
        room_id: str,
        after_seq: int,
        *,
        max_events: int | None = None,
        max_bytes: int | None = None,
    ) -> list[WireEvent] | None:
        # One script: appends landing meanwhile cannot move the entries we read (see _SINCE).
        k = self._keys
        async with backend_errors():
            reply = await self._since(
                keys=[k.room(room_id, "meta"), k.room(room_id, "log")],
                args=[
                    after_seq,
                    self._max if max_events is None else max_events,
                    0 if max_bytes is None else max_bytes,
                ],
            )
        last, status = int(reply[0]), _text(reply[1])
        if status == "ahead":
            return [] if after_seq == last else None
        if status != "ok":
            return None  # trimmed by age, count or bytes: the gap cannot be filled
        events = []
        for entry_id, blob in zip(reply[2::2], reply[3::2], strict=True):
            event = decode(blob)
            event["seq"] = int(entry_id.split(b"-")[1])
            events.append(event)
        return events

    async def last_seq(self, room_id: str) -> int:
        async with backend_errors():
            return int(await self._redis.hget(self._keys.room(room_id, "meta"), "seq") or 0)

    async def send_direct(self, room_id: str, member_id: str, event: WireEvent) -> None:
        blob = encode(event)
        async with backend_errors():
            holder = await self._direct(
                keys=[
                    self._keys.mailbox(room_id, member_id),
                    self._keys.room(room_id, "holders"),
                    self._keys.room(room_id, "mboxes"),
                ],
                args=[blob, MAILBOX_MAX, self._ttl_ms, member_id],
            )
            if holder:
                channel = self._keys.node_channel(holder.decode())
                await self._redis.spublish(channel, f"{room_id}|{member_id}|".encode() + blob)

    async def mailbox(self, room_id: str, member_id: str) -> list[WireEvent]:
        oldest = int((self._clock.now() * 1000) - self._ttl_ms)
        async with backend_errors():
            entries = await self._redis.xrange(
                self._keys.mailbox(room_id, member_id), min=f"{max(oldest, 0)}-0"
            )
        return [decode(fields[b"e"]) for _, fields in entries]

    async def publish_volatile(self, room_id: str, event: WireEvent) -> None:
        async with backend_errors():
            await self._redis.spublish(self._keys.room_channel(room_id), b"v:" + encode(event))

    async def subscribe(self, room_id: str) -> None:
        if room_id in self._rooms:
            return
        channel = self._keys.room_channel(room_id)
        self._channels[channel.encode()] = room_id
        self._rooms[room_id] = -1  # set from the stream once subscribed
        if self._pubsub is not None and self._healthy:
            async with backend_errors():
                await self._pubsub.ssubscribe(channel)
                self._rooms[room_id] = await self.last_seq(room_id)

    async def unsubscribe(self, room_id: str) -> None:
        if self._rooms.pop(room_id, None) is None:
            return
        channel = self._keys.room_channel(room_id)
        self._channels.pop(channel.encode(), None)
        if self._pubsub is not None and self._healthy:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.sunsubscribe(channel)

    async def expire_buffers(self) -> None:
        """Nothing to do: an idle room's stream expires with its key after the buffer TTL."""

    async def drop(self, room_id: str) -> None:
        async with backend_errors():
            k = self._keys
            boxes = await self._redis.smembers(k.room(room_id, "mboxes"))
            await self._redis.delete(
                k.room(room_id, "meta"),
                k.room(room_id, "log"),
                k.room(room_id, "logsz"),
                k.room(room_id, "chains"),
                k.room(room_id, "holders"),
                k.room(room_id, "mboxes"),
                *(k.mailbox(room_id, m.decode()) for m in boxes),
            )

    async def close(self) -> None:
        """Stop listening and close the client (shared with the other seams: close it last)."""
        self._closing = True
        if self._listener is not None:
            self._listener.cancel()
            # Bounded, and `asyncio.wait` rather than awaiting the task: a redis-py read that
            # swallows the cancellation must not hold the node's shutdown hostage.
            await asyncio.wait({self._listener}, timeout=CLOSE_TIMEOUT_S)
        await self._close_pubsub()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    # The listener -----------------------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = 0.05
        while not self._closing:
            started = asyncio.get_running_loop().time()
            try:
                await self._open_pubsub()
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Any failure (Redis restarted, CLIENT KILL, a bad frame) leads here, never to silence.
                self._healthy = False
                self.reconnects += 1
                log.warning("pubsub interrupted", extra={"error": type(exc).__name__})
                await self._close_pubsub()
                if asyncio.get_running_loop().time() - started > 10:
                    backoff = 0.05  # it had been working: a fresh failure starts fast again
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _open_pubsub(self) -> None:
        if self._ever_ready:
            # Whatever broke the listener (a Redis restart, a killed connection) may have broken the
            # pooled command connections too: drop the idle ones rather than fail a request on each.
            pool = getattr(self._redis, "connection_pool", None)
            if pool is not None:
                await pool.disconnect(inuse_connections=False)
        self._pubsub = self._redis.pubsub()
        await self._pubsub.ssubscribe(self._node_channel)
        for room_id in list(self._rooms):
            await self._pubsub.ssubscribe(self._keys.room_channel(room_id))
        # Catch up on what was published while this node was not listening.
        for room_id, last in list(self._rooms.items()):
            if last < 0:
                self._rooms[room_id] = await self.last_seq(room_id)
            elif last > 0 and not await self._redis.hexists(
                self._keys.room(room_id, "meta"), "seq"
            ):
                # Redis came back without the room (no persistence): restore it from this node.
                if self._events is not None:
                    await self._events.lost(room_id, last)
            else:
                await self._fill(room_id, last)
        self._healthy = True
        log.info("pubsub ready", extra={"rooms": len(self._rooms)})
        if self._ever_ready and self._events is not None:
            await self._events.resubscribed()
        self._ever_ready = True

    async def _close_pubsub(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None

    async def _listen(self) -> None:
        sharded = getattr(self._pubsub, "get_sharded_message", None)
        idle = 0.001
        while True:
            if sharded is None:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
            else:
                # A cluster's pub/sub holds one connection per shard and reads them in turn, each
                # with the whole timeout: poll without blocking, and back off only while idle.
                message = await sharded(ignore_subscribe_messages=True, timeout=0.0)
                if message is None:
                    await asyncio.sleep(idle)
                    idle = min(idle * 2, 0.05)
                    continue
                idle = 0.001
            if message is None:
                continue
            if message["type"] not in ("smessage", "message"):
                continue
            self.messages_read += 1
            channel: bytes = message["channel"]
            data: bytes = message["data"]
            if channel == self._node_channel.encode():
                await self._deliver_direct(data)
            else:
                room_id = self._channels.get(channel)
                if room_id is not None:
                    await self._deliver_room(room_id, data)

    async def _deliver_room(self, room_id: str, data: bytes) -> None:
        head, _, blob = data.partition(b":")
        if head == b"v":
            if self._events is not None:
                await self._events.room_event(room_id, decode(blob))
            return
        seq = int(head)
        last = self._rooms.get(room_id, -1)
        if last >= 0 and seq <= last:
            return  # already delivered (a gap fill got it first)
        if last >= 0 and seq > last + 1:
            await self._fill(room_id, last)
            if self._rooms.get(room_id, -1) >= seq:
                return
        event = decode(blob)
        event["seq"] = seq
        self._rooms[room_id] = seq
        if self._events is not None:
            await self._events.room_event(room_id, event)

    async def _fill(self, room_id: str, last: int) -> None:
        try:
            events = await self.since(room_id, last)
        except BusUnavailable:
            raise
        if events is None:
            # The buffer no longer covers the gap: tell local members to resume (they get `gap`).
            self._rooms[room_id] = await self.last_seq(room_id)
            if self._events is not None:
                await self._events.gap(room_id)
            return
        for event in events:
            self._rooms[room_id] = event["seq"]
            if self._events is not None:
                await self._events.room_event(room_id, event)

    async def _deliver_direct(self, data: bytes) -> None:
        room_id, member_id, blob = data.split(b"|", 2)
        if self._events is not None:
            await self._events.direct_event(room_id.decode(), member_id.decode(), decode(blob))
