"""A room's sender keys: taking them from pushes, sharing ours, and sealing what we send."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from chatserver import e2ee
from chatserver.client.common import MAX_OWN_SENT, MAX_STASHED_KEYS, _digest, _Own
from chatserver.client.errors import ChatError, ConnectionLost, _error_of
from chatserver.client.events import KeyRejected
from chatserver.client.room_members import RoomMembers
from chatserver.protocol import MAX_KEY_SHARES, ErrorCode
from chatserver.protocol.ids import b64id

log = logging.getLogger("chatserver.client")


class RoomKeys(RoomMembers):
    """Mixed into `Room` (under `RoomPushes`): sender keys in and out, and the send outbox."""

    def _on_key(self, data: dict[str, Any]) -> None:
        crypto = self._crypto
        skd = data.get("skd")
        if crypto is None or not isinstance(skd, bytes):
            return
        try:
            # Named by its signed sender, as `RoomCrypto.flagged` is, never by the push's `from`.
            sender = b64id(e2ee.parse_skd(skd).sender_id)
        except e2ee.E2EEError:
            sender = str(data.get("from"))
        try:
            crypto.receive_key_share(skd)
        except e2ee.E2EEError as exc:
            if exc.code in ("future_epoch", "wrong_sender"):
                # Its sender's join or the epoch bump has not been applied yet: keep it a while.
                deadline = asyncio.get_running_loop().time() + self.client.key_wait
                self._keys.append((deadline, data))
                while len(self._keys) > MAX_STASHED_KEYS:
                    self._keys.popleft()
            elif exc.code != "old_epoch":
                if exc.code == "equivocation":
                    log.warning("sender key equivocation", extra={"sender": sender})
                else:
                    log.info("sender key refused", extra={"code": exc.code})
                self._emit(KeyRejected(sender, self._name(sender), exc.code))

    def _retry_keys(self) -> None:
        now = asyncio.get_running_loop().time()
        keys, self._keys = self._keys, deque()
        for deadline, data in keys:
            if deadline >= now:
                self._on_key(data)

    async def _flush_soon(self) -> None:
        with contextlib.suppress(ChatError):
            async with self._send_lock:
                if self._online.is_set():
                    await self._flush_outbox()

    async def _flush_outbox(self) -> None:
        """Send queued sender keys in order, in batches; ConnectionLost leaves the rest queued."""
        while self._outbox:
            batch = _next_batch(self._outbox)
            shares = [{"to": b64id(recipient), "skd": skd} for recipient, skd in batch]
            ack = await self.client.call("key.send", {"room_id": self.room_id, "shares": shares})
            if isinstance(ack, dict) and not ack.get("ok"):
                error = _error_of(ack)
                if error.code == ErrorCode.RATE_LIMITED:
                    await asyncio.sleep(error.retry_after or 1.0)
                    continue
                if error.code == ErrorCode.UNAVAILABLE:
                    # Keep the keys queued: without them the recipients could not open what follows.
                    raise error
                log.info("sender keys not delivered", extra={"code": error.code})
            elif isinstance(ack, dict):
                for refusal in ack.get("refused") or ():
                    code = refusal.get("code") if isinstance(refusal, dict) else None
                    # The recipient left or the epoch moved on: that key is no longer needed.
                    if code not in (ErrorCode.UNKNOWN_RECIPIENT, "stale_epoch"):
                        log.info("sender key not delivered", extra={"code": str(code)[:32]})
            if self._outbox[: len(batch)] == batch:
                del self._outbox[: len(batch)]

    def _seal(self, body: bytes, text: str, parsed: dict[str, Any]) -> tuple[bytes, int]:
        """Encrypt under the current chain and queue the keys that open it.

        Keys are shared here, when we next speak, and never on a join or a leave: in a room of n,
        sharing on every join would cost n requests (and n signature checks) per join, and
        re-sharing on every leave n requests of n shares; members who only read share nothing."""
        crypto = self._crypto
        assert crypto is not None
        env = crypto.encrypt(body)
        self._own[_digest(env)] = _Own(text, parsed)
        while len(self._own) > MAX_OWN_SENT:
            self._own.popitem(last=False)
        self._outbox.extend(crypto.pending_key_shares())
        return env, self._generation

    async def _wait_epoch_change(self, env: bytes) -> None:
        """Wait (a little) until our epoch is past the envelope's: its member.left is on its way."""
        sealed_epoch = e2ee.parse_envelope(env).epoch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.client.key_wait
        while self.epoch <= sealed_epoch and loop.time() < deadline and not self.closed:
            self._epoch_moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._epoch_moved.wait(), deadline - loop.time())

    async def _wait_online(self) -> None:
        if self._online.is_set():
            return
        timeout = self.client.reconnect_timeout + self.client.call_timeout
        try:
            await asyncio.wait_for(self._online.wait(), timeout)
        except TimeoutError:
            raise ConnectionLost() from None
        self._check_open()


def _next_batch(outbox: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The longest run of the outbox's first entries that makes one `key.send`: at most
    MAX_KEY_SHARES, and each recipient once (a second key for someone waits for the next batch)."""
    recipients: set[bytes] = set()
    batch: list[tuple[bytes, bytes]] = []
    for recipient, skd in outbox:
        if len(batch) >= MAX_KEY_SHARES or recipient in recipients:
            break
        recipients.add(recipient)
        batch.append((recipient, skd))
    return batch
