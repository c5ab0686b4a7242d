"""One joined room: what the application calls (`Room` is assembled from its mixins below).

The layers, each a module, each calling only the ones below it (the calls upward, to `send` and
`_schedule_repin`, are declared under `TYPE_CHECKING` where they are made):
- `room_state.RoomState`: the state and the output (events to the application, closing);
- `room_members.RoomMembers`: admission of members from their signed cards, trust in roles;
- `room_keys.RoomKeys`: sender keys in and out, the outbox, sealing;
- `room_pushes.RoomPushes`: ordered pushes, applied strictly in `seq` order;
- `room_join.RoomJoining`: join, resume, catch-up, the pin re-sent to newcomers;
- `room_controls.RoomControls`: the calls that ask the server to act (moderation, lobby, Q&A).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

from chatserver import e2ee
from chatserver.client.common import _Closed, _digest
from chatserver.client.errors import ChatError, ConnectionLost, _error_of
from chatserver.client.events import Message, RoomEvent, Sent
from chatserver.client.room_controls import RoomControls
from chatserver.client.room_join import RoomJoining
from chatserver.protocol import ErrorCode

log = logging.getLogger("chatserver.client")


class Room(RoomJoining, RoomControls):
    """One joined room: its identity and crypto state, membership, and the events for the UI.

    Read events with `async for ev in room.events()` (or `room.messages()` for messages only);
    a room has one reader.
    """

    def safety_code(self) -> str:
        """This epoch's safety code: compare it out of band to detect ghost members or swapped keys."""
        assert self._crypto is not None
        return self._crypto.safety_code()

    async def send(self, text: str, *, pin: bool = False, **extra: Any) -> Sent:
        """Encrypt and send one message; returns once the server has sequenced it (`pin`: as the
        room's pin, hosts and moderators only; see `pin`).

        Sender keys go out first. Rate limits and `unavailable` (a backend outage, for up to the
        client's `reconnect_timeout`) are waited out; a send interrupted by a dropped connection
        is retried with the same envelope after resume (never doubled). Raises ChatError on a
        refusal."""
        body = e2ee.encode_text(text, **extra)
        parsed = json.loads(body)
        loop = asyncio.get_running_loop()
        async with self._send_lock:
            env, generation = self._seal(body, text, parsed)
            stale_retries = 0
            # `unavailable` (the backend is briefly unreachable) is waited out like a dropped
            # connection: the same envelope goes again, for as long as we would reconnect.
            patience = loop.time() + self.client.reconnect_timeout
            while True:
                self._check_open()
                await self._wait_online()
                own = self._own.get(_digest(env))
                if own is not None and own.seq is not None:
                    return Sent(own.seq, own.ts, duplicate=True)  # seen in order meanwhile
                if generation != self._generation or own is None:
                    # We rejoined with a new identity (or the record was evicted).
                    env, generation = self._seal(body, text, parsed)
                    continue
                try:
                    await self._flush_outbox()
                    payload: dict[str, Any] = {"room_id": self.room_id, "env": env}
                    if pin:
                        payload["pin"] = True
                    ack = await self.client.call("msg.send", payload)
                except ConnectionLost:
                    continue
                except ChatError as exc:  # a sender key the server could not take now
                    if exc.code != ErrorCode.UNAVAILABLE or loop.time() >= patience:
                        raise
                    await self._later(exc)
                    continue
                if isinstance(ack, dict) and ack.get("ok"):
                    seq, ts = int(ack["seq"]), int(ack["ts"])
                    own.seq, own.ts = seq, ts
                    return Sent(seq, ts, bool(ack.get("duplicate", False)))
                error = _error_of(ack)
                if error.code == ErrorCode.RATE_LIMITED:
                    await asyncio.sleep(error.retry_after or 1.0)
                    continue
                if error.code == ErrorCode.UNAVAILABLE and loop.time() < patience:
                    await self._later(error)
                    continue
                if error.code in ("stale_epoch", ErrorCode.NOT_IN_ROOM) and stale_retries < 5:
                    # The epoch moved (someone left) or our seat is being resumed.
                    if own.seq is not None:  # it was sequenced before the change
                        return Sent(own.seq, own.ts, duplicate=True)
                    stale_retries += 1
                    await self._wait_epoch_change(env)
                    self._own.pop(_digest(env), None)
                    env, generation = self._seal(body, text, parsed)
                    continue
                self._own.pop(_digest(env), None)
                raise error

    async def _later(self, error: ChatError) -> None:
        """Wait before asking again after `unavailable` (its `retry_after`, jittered, bounded)."""
        wait = min(error.retry_after or 1.0, self.client.reconnect_delay_max)
        await asyncio.sleep(wait * (0.75 + random.random() / 2))  # noqa: S311 - jitter

    async def rename(self, nickname: str) -> None:
        ack = await self.client.request(
            "room.rename", {"room_id": self.room_id, "nickname": nickname}
        )
        self.nickname = nickname
        self._apply_member(ack["you"])

    async def typing(self, on: bool) -> None:
        await self.client.request("typing", {"room_id": self.room_id, "on": on})

    async def leave(self) -> None:
        """Leave the room (the others re-key); the event stream ends."""
        if self.closed:
            return
        try:
            await self.client.request("room.leave", {"room_id": self.room_id})
        finally:
            self._close()

    # host and moderator controls (each refused by the server without the role)

    async def events(self) -> AsyncIterator[RoomEvent]:
        """Every event for the UI, in order; ends after RoomEnded or leave()."""
        while True:
            ev = await self._queue.get()
            if isinstance(ev, _Closed):
                self._queue.put_nowait(ev)  # any later reader ends too
                return
            yield ev

    async def messages(self) -> AsyncIterator[Message]:
        """Decrypted messages (ours included, `own=True`) in seq order, never twice."""
        async for ev in self.events():
            if isinstance(ev, Message):
                yield ev
