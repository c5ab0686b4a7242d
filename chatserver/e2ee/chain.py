"""Symmetric sender-key chains (as in Signal sender keys / libsignal).

mk_i = HMAC(ck_i, 0x01), ck_{i+1} = HMAC(ck_i, 0x02). A holder of ck_i can
derive every later key but none earlier, which is why a joiner who receives
the current chain key cannot read history.

Receivers look a key up *without* changing state (:meth:`ReceiverChain.plan`)
and apply the change (:meth:`ReceiverChain.commit`) only once the whole
envelope has checked out, so a forged envelope cannot burn or skip keys.

Forward secrecy: a receiver keeps only the chain key at ``next_index`` and the
cached keys of skipped, still unread indices. It never keeps the chain key it
was first given, so a memory compromise exposes no message it has already read.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from .constants import (
    KEY_LEN,
    MAX_SKIP,
    MAX_SKIPPED_KEYS,
    ROTATE_AFTER_MESSAGES,
    ROTATE_AFTER_MS,
    SKIPPED_KEY_TTL_MS,
    U32_MAX,
)
from .errors import E2EEError
from .primitives import ct_eq, hmac_sha256


def chain_step(ck: bytes) -> tuple[bytes, bytes]:
    """Return ``(mk_i, ck_{i+1})`` for chain key ``ck_i``."""
    return hmac_sha256(ck, b"\x01"), hmac_sha256(ck, b"\x02")


def advance(ck: bytes, steps: int) -> bytes:
    for _ in range(steps):
        ck = hmac_sha256(ck, b"\x02")
    return ck


@dataclass
class SenderChain:
    """Our own chain in one epoch. ``index`` is the next index to use."""

    epoch: int
    key_id: int
    ck: bytes = field(repr=False)
    index: int
    created_ms: int
    sent: int = 0
    share_index: int = -1
    share_ck: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        self.checkpoint()

    def checkpoint(self) -> None:
        """Record the current position as the one new key shares start from.

        Envelopes sealed after a checkpoint count as not yet sent: the SKDs
        produced at the next share round start at the checkpoint, so the
        documented pattern (encrypt, then send pending shares, then the
        envelope) lets every recipient open that envelope, while a member
        added later starts at the index current when it was added.
        """
        self.share_index, self.share_ck = self.index, self.ck

    def needs_rotation(self, epoch: int, now_ms: int) -> bool:
        return (
            epoch != self.epoch
            or self.sent >= ROTATE_AFTER_MESSAGES
            or now_ms - self.created_ms >= ROTATE_AFTER_MS
            or self.index >= U32_MAX
        )

    def next_key(self) -> tuple[int, bytes]:
        """Consume the next message key: returns ``(index, mk)`` and ratchets."""
        mk, self.ck = chain_step(self.ck)
        index = self.index
        self.index += 1
        self.sent += 1
        return index, mk


@dataclass(frozen=True)
class Plan:
    """What accepting one index would change; applied only by :meth:`ReceiverChain.commit`."""

    index: int
    mk: bytes = field(repr=False)
    from_cache: bool
    new_ck: bytes = field(repr=False)
    new_next: int
    skipped: tuple[tuple[int, bytes], ...] = field(repr=False)


@dataclass
class ReceiverChain:
    """A peer's chain as we know it: ``ck`` is the chain key at ``next_index``.

    Nothing here derives a key of an index already read: ``ck`` only goes
    forward, and ``skipped`` holds message keys of indices not yet read.
    """

    sender_id: bytes
    epoch: int
    key_id: int
    ck: bytes = field(repr=False)
    next_index: int
    skipped: OrderedDict[int, tuple[bytes, int]] = field(default_factory=OrderedDict, repr=False)

    def expire(self, now_ms: int) -> None:
        for idx in [i for i, (_, t) in self.skipped.items() if now_ms - t >= SKIPPED_KEY_TTL_MS]:
            del self.skipped[idx]

    def plan(self, index: int, now_ms: int) -> Plan:
        """Find the key for ``index`` (replay window rules) without mutating anything."""
        if index < self.next_index:
            hit = self.skipped.get(index)
            if hit is None or now_ms - hit[1] >= SKIPPED_KEY_TTL_MS:
                raise E2EEError("replay", "index already used or its key expired")
            return Plan(index, hit[0], True, self.ck, self.next_index, ())
        jump = index - self.next_index
        if jump > MAX_SKIP:
            raise E2EEError("too_far_ahead", f"jump of {jump} > {MAX_SKIP}")
        ck = self.ck
        skipped: list[tuple[int, bytes]] = []
        for i in range(self.next_index, index):
            mk_i, ck = chain_step(ck)
            skipped.append((i, mk_i))
        mk, ck = chain_step(ck)
        return Plan(index, mk, False, ck, index + 1, tuple(skipped[-MAX_SKIPPED_KEYS:]))

    def commit(self, plan: Plan, now_ms: int) -> None:
        if plan.from_cache:
            del self.skipped[plan.index]
            return
        for i, mk_i in plan.skipped:
            self.skipped[i] = (mk_i, now_ms)
        while len(self.skipped) > MAX_SKIPPED_KEYS:
            self.skipped.popitem(last=False)
        self.ck = plan.new_ck
        self.next_index = plan.new_next

    def consistent_with(self, start_index: int, chain_key: bytes) -> bool:
        """Does ``chain_key`` at ``start_index`` lie on the chain we hold?

        Used to tell a harmless re-share (same chain) from equivocation (a
        different chain key under the same key_id). Compares against what we
        keep anyway, ``ck`` at ``next_index``: the lower-positioned of the two
        keys is stepped forward to the other's position (at most MAX_SKIP
        steps, ``too_far_ahead`` beyond) and must equal it.
        """
        if len(chain_key) != KEY_LEN:
            return False
        lo_i, lo_ck, hi_i, hi_ck = self.next_index, self.ck, start_index, chain_key
        if hi_i < lo_i:
            lo_i, lo_ck, hi_i, hi_ck = hi_i, hi_ck, lo_i, lo_ck
        if hi_i - lo_i > MAX_SKIP:
            raise E2EEError("too_far_ahead", "re-shared chain index too far from ours")
        return ct_eq(advance(lo_ck, hi_i - lo_i), hi_ck)
