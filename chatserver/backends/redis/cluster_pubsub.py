"""Sharded pub/sub on a Redis Cluster, read without polling.

A shard channel is served only by the master that owns its slot, so a node holds one pub/sub
connection per master it has channels on. Each connection is read by its own task, blocking until
something arrives (no timeout, no wake-ups while idle); what the readers read goes, in arrival
order, into one bounded queue that the bus's listener consumes, so deliveries stay serialized as
with one connection. A room's channel lives on one shard, and one reader reads it in order.

Nothing here recovers behind the bus's back. The connections never reconnect on their own (a
silent reconnect resubscribes but loses what was published meanwhile). Any failure, a reader's or
a subscribe's, is kept, and `get_message` raises it (before any message still queued), for the
bus's supervisor to reconnect, resubscribe everything and fill the gap from the rooms' streams.
Failures include a dropped connection, an error reply to SSUBSCRIBE (MOVED: the slot map is
stale) and the server unsubscribing a channel nobody asked to leave (its slot moved to another
shard: resharding). After a failure `open(refresh=True)` reads the slot map afresh, so the
resubscription goes to each slot's current master (after a failover, too).

redis-py's `ClusterPubSub` is not used: read without a target node it takes the shards in turn,
each for the whole timeout (only a poll serves them all); and when a slot moves, it ignores the
server's unsubscribe (the channel is deaf until a command of this client is answered MOVED) and
then moves the channel by itself, with no gap fill.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import ConnectionPool
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

# Messages read but not yet delivered. Past this the readers stop reading, so a slow listener
# backs up into Redis (whose output buffer limit then drops the connection: a failure, a gap
# fill) instead of into this process's memory.
QUEUE_MAX = 1024

Message = dict[str, Any]


class ShardError(RedisError):
    """A shard's pub/sub cannot go on as it is (the slot map did not cover a channel, say)."""


class ChannelMoved(ShardError):
    """The server unsubscribed a channel this node still wants: its slot moved to another shard."""


@dataclass
class _Shard:
    node: ClusterNode
    pool: ConnectionPool
    # Any: redis-py's PubSub methods are untyped (strict mypy refuses calls to them).
    pubsub: Any
    # Serializes this connection's subscribe commands: the first one connects, and two at once
    # would each open a connection.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # SUNSUBSCRIBEs sent and not yet confirmed, per channel: any other unsubscribe is the server's.
    leaving: Counter[bytes] = field(default_factory=Counter)
    reader: asyncio.Task[None] | None = None


class ShardedPubSub:
    """`ssubscribe`/`sunsubscribe` route a channel to the master of its slot (a reader is started
    with a shard's first channel); `get_message` waits for the next message of any shard, or raises
    the first reader failure. One instance per connection attempt: after a failure, `aclose` it and
    open a new one."""

    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster = cluster
        self._shards: dict[str, _Shard] = {}
        self._queue: asyncio.Queue[Message | Exception] = asyncio.Queue(QUEUE_MAX)
        self._where: dict[bytes, _Shard] = {}  # channel -> the shard it was subscribed on
        self._failed: Exception | None = None

    async def open(self, *, refresh: bool) -> None:
        """Make sure the slot map is known; with `refresh`, read it afresh (after a failure, the
        slot may have moved or the master failed over)."""
        await self._cluster.initialize()
        if refresh:
            await self._cluster.nodes_manager.initialize()

    async def ssubscribe(self, channel: str) -> None:
        """Subscribe on the master of the channel's slot. Raises (a RedisError) if that fails,
        and then fails the whole instance too: a channel must not stay unsubscribed unnoticed."""
        try:
            node = self._cluster.get_node_from_key(channel)
            if node is None:
                raise RedisClusterException(f"no master for {channel!r}")
        except RedisClusterException as exc:
            self._fail(ShardError(str(exc)))
            raise ShardError(str(exc)) from exc
        shard = self._shards.get(node.name) or self._shard(node)
        async with shard.lock:
            self._where[channel.encode()] = shard
            try:
                # Only sends: the confirmation (or a MOVED error) comes to the reader.
                await shard.pubsub.ssubscribe(channel)
            except Exception as exc:
                self._fail(exc)
                raise
            if shard.reader is None:
                shard.reader = asyncio.create_task(self._read(shard))

    async def sunsubscribe(self, channel: str) -> None:
        shard = self._where.pop(channel.encode(), None)
        if shard is None:
            return
        async with shard.lock:
            shard.leaving[channel.encode()] += 1
            try:
                await shard.pubsub.sunsubscribe(channel)
            except Exception as exc:
                self._fail(exc)
                raise
        # A shard left without channels keeps its connection and reader: idle, they cost nothing.

    async def get_message(self) -> Message:
        """The next published message (`smessage`) of any shard, in arrival order; raises the
        first failure (of a reader or a subscription) instead, once there is one."""
        while self._failed is None:
            item = await self._queue.get()
            if not isinstance(item, Exception):
                return item
        raise self._failed

    def _fail(self, exc: Exception) -> None:
        if self._failed is None:
            self._failed = exc
        # Wakes a listener waiting on an empty queue; a full one is read again at once, and the
        # failure is seen before the next message.
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(exc)

    async def aclose(self, wait_s: float) -> None:
        """Stop every reader (waiting at most `wait_s`) and close the connections."""
        readers = [s.reader for s in self._shards.values() if s.reader is not None]
        for reader in readers:
            reader.cancel()
        if readers:
            # Bounded: a read that swallows the cancellation must not hold the shutdown hostage.
            await asyncio.wait(readers, timeout=wait_s)
        for shard in self._shards.values():
            with contextlib.suppress(Exception):
                await shard.pubsub.aclose()
            with contextlib.suppress(Exception):
                await shard.pool.disconnect()
        self._shards.clear()
        self._where.clear()

    def _shard(self, node: ClusterNode) -> _Shard:
        # The node's own settings (address, timeouts, credentials), in a pool of one connection of
        # its own, with no error retried: a reconnect would resubscribe silently.
        kwargs = {**node.connection_kwargs, "retry": Retry(NoBackoff(), 0, supported_errors=())}
        pool = ConnectionPool(connection_class=node.connection_class, max_connections=1, **kwargs)
        shard = _Shard(node, pool, PubSub(pool, encoder=self._cluster.encoder))
        self._shards[node.name] = shard
        return shard

    async def _read(self, shard: _Shard) -> None:
        try:
            while True:
                if not shard.pubsub.connection.is_connected:
                    # Dropped by a failed send (a subscribe from another task): a read would
                    # reconnect and resubscribe without a word.
                    raise RedisConnectionError(f"pub/sub connection to {shard.node.name} lost")
                # timeout=None: block until the server sends something (no socket timeout).
                message: Message | None = await shard.pubsub.get_message(timeout=None)
                if message is None:
                    continue
                kind = message["type"]
                if kind == "smessage":
                    await self._queue.put(message)
                elif kind == "sunsubscribe":
                    channel: bytes = message["channel"]
                    if shard.leaving[channel] <= 0:
                        raise ChannelMoved(f"{channel!r} unsubscribed by {shard.node.name}")
                    shard.leaving[channel] -= 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)  # never silent: the listener raises it
