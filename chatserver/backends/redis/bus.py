"""RoomBus on Redis: one Lua script per append (order, guards, recovery stream, publish), a sharded
channel per room that a node subscribes to only while it holds members there, and a channel per node
for directed events.

The pub/sub listener never awaits a client socket (delivery only queues frames), never dies silently
(a supervisor reconnects with backoff and resubscribes), and after any interruption fills the gap
from the room's stream, so a node delivers each room's events once and in order. A node's own
append, when it is the room's next event here, is delivered from the script's reply (its echo on the
channel is then skipped): the sender's node does not wait a pub/sub hop.

On one Redis the listener reads its one pub/sub connection; on a cluster, `ShardedPubSub` holds a
connection per shard, each read by a blocking task, and the listener consumes what they read in
arrival order (nothing polls; a reader's failure reaches the supervisor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import msgpack
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from chatserver.backends.redis.cluster_pubsub import ShardedPubSub
from chatserver.backends.redis.conn import AnyRedis, Keys, backend_errors, lua_script
from chatserver.ports import (
    AppendRefused,
    BusEvents,
    BusUnavailable,
    Clock,
    Duplicate,
    EnvelopeGuard,
    WireEvent,
)

log = logging.getLogger("chatserver.bus")

MAILBOX_MAX = 256
CLOSE_TIMEOUT_S = 2.0  # the longest `close` waits for the listener to stop

# The scripts (their KEYS and ARGV named in each file): one per append, a page of the recovery
# stream, a directed event into a mailbox.
_APPEND = lua_script("log_append") + lua_script("append")
# A state change and its events in one step: run by RedisRoomStore, with this bus's log settings.
COMMIT = lua_script("log_append") + lua_script("commit")
_SINCE = lua_script("since")
_DIRECT = lua_script("direct")


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
        # A cluster's node channels live in other slots than a room's keys: published apart.
        self._cluster = isinstance(redis, RedisCluster)
        self._events: BusEvents | None = None
        self._ever_ready = False
        # Rooms this node holds, with the last sequence number delivered locally.
        self._rooms: dict[str, int] = {}
        self._channels: dict[bytes, str] = {}
        # One Redis: redis-py's PubSub, typed Any (its methods are untyped: strict mypy refuses
        # calls to them). A cluster: a ShardedPubSub (the same subscribe calls, its own reads).
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
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
            "" if guard is None or guard.state_version is None else guard.state_version,
        ]
        quotas = () if guard is None else guard.quotas
        for quota in quotas:
            args += [quota.rate_per_s, quota.burst]
        async with backend_errors():
            result = await self._append(
                keys=[
                    k.room(room_id, "meta"),
                    k.room(room_id, "log"),
                    k.room(room_id, "chains"),
                    k.room(room_id, "logsz"),
                    k.room(room_id, "state"),
                    k.room(room_id, "quotas"),
                    *(k.room(room_id, f"q:{quota.key}") for quota in quotas),
                ],
                args=args,
            )
        status = _text(result[0])
        if status == "ok":
            seq = int(result[1])
            await self._deliver_appended(room_id, event, seq)
            return seq
        if status == "duplicate":
            return Duplicate(int(result[1]), int(result[2]))
        if status == "rate_limited":
            refused = quotas[int(result[2]) - 1].name
            raise AppendRefused(status, quota=refused, wait_s=float(result[1]))
        raise AppendRefused(status)

    def log_keys(self, room_id: str) -> list[str]:
        """The keys a commit appends through (commit.lua's KEYS[2..4])."""
        k = self._keys
        return [k.room(room_id, "meta"), k.room(room_id, "log"), k.room(room_id, "logsz")]

    def log_args(self, room_id: str) -> list[Any]:
        """A commit's log settings (commit.lua's ARGV[5..9]): the channel, now and the bounds."""
        return [
            self._keys.room_channel(room_id),
            int(self._clock.now() * 1000),
            self._ttl_ms,
            self._max,
            self._max_bytes,
        ]

    async def since(
        self,
        room_id: str,
        after_seq: int,
        *,
        max_events: int | None = None,
        max_bytes: int | None = None,
    ) -> list[WireEvent] | None:
        # One script: appends landing meanwhile cannot move the entries we read (see since.lua).
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
        await self.send_direct_many(room_id, [(member_id, event)])

    async def send_direct_many(
        self, room_id: str, deliveries: Sequence[tuple[str, WireEvent]]
    ) -> None:
        """One script for the whole batch (see direct.lua): on one Redis server it also publishes,
        so the batch is one round trip; on a cluster the publishes to the holders' node channels
        (other slots) follow in one pipeline."""
        if not deliveries:
            return
        k = self._keys
        blobs = [encode(event) for _, event in deliveries]
        args: list[Any] = [
            MAILBOX_MAX,
            self._ttl_ms,
            "" if self._cluster else k.node_channel(""),
            room_id,
        ]
        for (member_id, _), blob in zip(deliveries, blobs, strict=True):
            args += [member_id, blob]
        async with backend_errors():
            holders = await self._direct(
                keys=[
                    k.room(room_id, "holders"),
                    k.room(room_id, "mboxes"),
                    *(k.mailbox(room_id, member_id) for member_id, _ in deliveries),
                ],
                args=args,
            )
            if not self._cluster:
                return
            pipe = self._redis.pipeline()
            published = False
            for (member_id, _), blob, holder in zip(deliveries, blobs, holders, strict=True):
                if holder:
                    channel = k.node_channel(_text(holder))
                    pipe.spublish(channel, f"{room_id}|{member_id}|".encode() + blob)
                    published = True
            if published:
                await pipe.execute()

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
                await self._pubsub.ssubscribe(channel)  # on a cluster, on the slot's shard
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
            quotas = await self._redis.smembers(k.room(room_id, "quotas"))
            await self._redis.delete(
                *quotas,
                k.room(room_id, "quotas"),
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
        # Whatever broke the listener (a Redis restart, a killed connection) may have broken the
        # pooled command connections too: drop the idle ones rather than fail a request on each.
        # A cluster client (RedisCluster) has no single `connection_pool`: its connections stay.
        if self._ever_ready and isinstance(self._redis, Redis):
            await self._redis.connection_pool.disconnect(inuse_connections=False)
        if self._cluster:
            self._pubsub = ShardedPubSub(self._redis)
            # After a failure the slot map may be stale (a slot moved, a master failed over).
            await self._pubsub.open(refresh=self.reconnects > 0)
        else:
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
                if isinstance(self._pubsub, ShardedPubSub):
                    await self._pubsub.aclose(wait_s=CLOSE_TIMEOUT_S)
                else:
                    await self._pubsub.aclose()
            self._pubsub = None

    async def _listen(self) -> None:
        if isinstance(self._pubsub, ShardedPubSub):
            # Every shard's messages through one queue, delivered one at a time as on one Redis;
            # it raises the first reader failure.
            while True:
                await self._dispatch(await self._pubsub.get_message())
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                await self._dispatch(message)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if message["type"] not in ("smessage", "message"):
            return
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

    async def _deliver_appended(self, room_id: str, event: WireEvent, seq: int) -> None:
        """Deliver what this node just appended from the script's reply, when it is the next event
        of a room this node holds: its members do not wait for the pub/sub echo, which is then
        skipped as already delivered. Anything else (an event of another node in between) waits
        for the listener, which keeps the order."""
        if self._healthy and self._rooms.get(room_id, -1) == seq - 1:
            self._rooms[room_id] = seq
            event["seq"] = seq
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
            if event["seq"] <= self._rooms.get(room_id, -1):
                continue  # delivered meanwhile (from an append's reply, or the listener)
            self._rooms[room_id] = event["seq"]
            if self._events is not None:
                await self._events.room_event(room_id, event)

    async def _deliver_direct(self, data: bytes) -> None:
        room_id, member_id, blob = data.split(b"|", 2)
        if self._events is not None:
            await self._events.direct_event(room_id.decode(), member_id.decode(), decode(blob))
