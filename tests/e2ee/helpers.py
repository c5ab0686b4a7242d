"""Shared helpers for the E2EE tests: a movable clock, a deterministic RNG, small rooms."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

from chatserver.e2ee import Identity, RoomCrypto, new_room_secret

T0 = 1_700_000_000_000


class Clock:
    def __init__(self, t: int = T0) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t

    def advance(self, ms: int) -> None:
        self.t += ms


def det_rng(seed: bytes) -> Callable[[int], bytes]:
    """Deterministic byte stream (HMAC-SHA256 in counter mode) for reproducible tests."""
    counter = 0
    buf = b""

    def rng(n: int) -> bytes:
        nonlocal counter, buf
        while len(buf) < n:
            buf += hmac.digest(seed, counter.to_bytes(8, "big"), hashlib.sha256)
            counter += 1
        out, buf = buf[:n], buf[n:]
        return out

    return rng


def make_room(n: int, clock: Clock | None = None) -> tuple[bytes, list[RoomCrypto]]:
    clock = clock or Clock()
    room_id = new_room_secret().room_id
    members = [RoomCrypto(Identity.generate(), room_id, now_ms=clock) for _ in range(n)]
    for m in members:
        for other in members:
            m.add_member(other.card)
    return room_id, members


def share(sender: RoomCrypto, peers: Sequence[RoomCrypto]) -> int:
    """Deliver the sender's pending SKDs to whichever peers they address."""
    by_id = {p.member_id: p for p in peers}
    shares = sender.pending_key_shares()
    for rid, skd in shares:
        if rid in by_id:
            by_id[rid].receive_key_share(skd)
    return len(shares)


def send(sender: RoomCrypto, peers: Sequence[RoomCrypto], text: str = "hi") -> bytes:
    """encrypt, then deliver SKDs before the envelope (the documented order)."""
    env = sender.encrypt(text)
    share(sender, peers)
    return env


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[offset] ^= mask
    return bytes(b)


class ManualSender:
    """A sender driven by hand (known chain key, any index): reaches states RoomCrypto won't."""

    def __init__(self, room_id: bytes, *, epoch: int = 0, key_id: int = 7) -> None:
        from chatserver.e2ee.identity import parse_card

        self.identity = Identity.generate()
        self.room_id = room_id
        self.epoch = epoch
        self.key_id = key_id
        self.ck0 = bytes(range(32))
        self.card = self.identity.card(room_id, T0)
        self.key_card = parse_card(self.card, room_id)

    def skd_for(self, rc: RoomCrypto, *, chain_key: bytes | None = None, start: int = 0) -> bytes:
        from chatserver.e2ee.chain import advance
        from chatserver.e2ee.identity import parse_card
        from chatserver.e2ee.skd import seal_skd

        return seal_skd(
            self.identity,
            parse_card(rc.card, self.room_id),
            room_id=self.room_id,
            epoch=self.epoch,
            key_id=self.key_id,
            start_index=start,
            chain_key=chain_key or advance(self.ck0, start),
        )

    def mk(self, index: int) -> bytes:
        from chatserver.e2ee.chain import advance, chain_step

        return chain_step(advance(self.ck0, index))[0]

    def envelope(self, index: int, body: bytes = b'{"text":"x"}', msg_type: int = 1) -> bytes:
        from chatserver.e2ee.envelope import seal_envelope
        from chatserver.e2ee.payload import Payload

        return seal_envelope(
            self.identity,
            room_id=self.room_id,
            epoch=self.epoch,
            key_id=self.key_id,
            index=index,
            mk=self.mk(index),
            salt=b"s" * 16,
            payload=Payload(b"f" * 32, msg_type, T0, body),
        )

    def join(self, rc: RoomCrypto) -> None:
        rc.add_member(self.card)
        rc.receive_key_share(self.skd_for(rc))
