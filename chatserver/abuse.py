"""Abuse limits beyond the per-connection buckets: per address group, per member, per room, cluster-wide.

- **Addresses** are read, grouped and keyed by `chatserver.addresses` (one identity for every limit
  and ban); this guard keeps each connection's group in memory while it is open, and a seat's group
  for the resume grace after (so a ban issued meanwhile still reaches the address).
- **Per address** buckets (joins, room creations) live in this node's memory only: Redis never
  holds anything derived from an address of someone who was not banned. Addresses in
  `address_limit_exempt` (loopback by default, for a proxy on the same host that is not declared
  trusted) are not limited per address.
- **Cluster-wide** buckets go through the `RateLimiter` seam (Redis when the node is one of many):
  room creations overall; messages per member and per room are quotas the message's append takes
  in the same step (`message_quotas`). Every refusal is `rate_limited` with `retry_after`.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from chatserver.addresses import AddressKeys, environ_address, group_of, parse_networks
from chatserver.backends.memory.ratelimit import MemoryRateLimiter
from chatserver.ports import Quota
from chatserver.protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from chatserver.config import Settings
    from chatserver.ports import Clock, RateLimiter


class AbuseGuard:
    """One per node: each connection's address group, and the address and cluster-wide checks."""

    def __init__(
        self, settings: Settings, limiter: RateLimiter, clock: Clock, server_seed: bytes
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.local = MemoryRateLimiter()  # per-address buckets: never in Redis
        self.clock = clock
        self.trusted = parse_networks(settings.trusted_proxies)
        self.exempt = parse_networks(settings.address_limit_exempt)
        self.keys = AddressKeys(server_seed, clock)
        # sid -> address group (None: unknown) and limit key (None: exempt); forgotten on disconnect.
        self.groups: dict[str, bytes | None] = {}
        self.addresses: dict[str, str | None] = {}
        # (room, member) -> (group, until): a seat's group kept for the resume grace after its
        # connection closed, so a ban issued meanwhile still keys the address.
        # In insertion order, which is deadline order (the grace is one setting): pruned from the
        # front, so a disconnect costs only what has lapsed since the last one.
        self.recent: OrderedDict[tuple[str, str], tuple[bytes, float]] = OrderedDict()

    def connected(self, sid: str, environ: Mapping[str, Any]) -> None:
        address = environ_address(environ, self.trusted)
        self.groups[sid] = group_of(address) if address is not None else None
        self.addresses[sid] = self._limit_key(address)

    def address_key(self, environ: Mapping[str, Any]) -> str | None:
        """The connection's per-address limit key; None when the address is exempt or unknown."""
        return self._limit_key(environ_address(environ, self.trusted))

    def _limit_key(self, address: str | None) -> str | None:
        if address is None or any(ipaddress.ip_address(address) in n for n in self.exempt):
            return None
        return self.keys.limit_key(group_of(address))

    def disconnected(self, sid: str, seats: Iterable[tuple[str, str]] = ()) -> None:
        """Forget the connection; keep its seats' group until the resume grace lapses."""
        group = self.groups.pop(sid, None)
        self.addresses.pop(sid, None)
        now = self.clock.now()
        while self.recent:
            seat, (_, until) = next(iter(self.recent.items()))
            if until > now:
                break
            del self.recent[seat]
        if group is not None:
            until = now + self.settings.resume_grace_s
            for seat in seats:
                self.recent.pop(seat, None)  # re-inserted at the end: the order stays by deadline
                self.recent[seat] = (group, until)

    def report_group(self, sid: str, room_id: str) -> str:
        """The reporter's group key in this room ("" when the address is unknown)."""
        group = self.groups.get(sid)
        return self.keys.report_key(room_id, group) if group is not None else ""

    def seat_group(self, room_id: str, member_id: str, sid: str | None) -> bytes | None:
        """The address group behind a seat: its open connection's, or its recent one's."""
        if sid is not None and self.groups.get(sid) is not None:
            return self.groups[sid]
        found = self.recent.get((room_id, member_id))
        if found is not None and found[1] > self.clock.now():
            return found[0]
        return None

    async def _hit(
        self, limiter: RateLimiter, key: str, rate: float, burst: int, what: str
    ) -> None:
        if rate <= 0:
            return
        wait = await limiter.hit(key, rate, burst, self.clock.now())
        if wait > 0:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED, f"Too many {what}; slow down.", max(wait, 0.001)
            )

    async def check_join(self, sid: str) -> None:
        s = self.settings
        address = self.addresses.get(sid)
        if address is not None:
            await self._hit(
                self.local,
                f"join:{address}",
                s.address_join_rate_per_s,
                s.address_join_burst,
                "joins",
            )

    async def check_create(self, sid: str) -> None:
        s = self.settings
        address = self.addresses.get(sid)
        if address is not None:
            await self._hit(
                self.local,
                f"create:{address}",
                s.address_create_rate_per_s,
                s.address_create_burst,
                "rooms created",
            )
        await self._hit(
            self.limiter,
            "create:all",
            s.cluster_create_rate_per_s,
            s.cluster_create_burst,
            "rooms created",
        )

    def message_quotas(self, room_id: str, member_id: str) -> tuple[Quota, ...]:
        """Per member (so a reconnect does not refill the bucket) and per room, cluster-wide: taken
        by the message's append, in the same step (`EnvelopeGuard.quotas`). Keys name the member
        only by a digest, and live in the room's part of the backend."""
        s = self.settings
        room_rate = s.room_msg_rate_per_s or 10 * s.msg_rate_per_s
        room_burst = s.room_msg_burst or 10 * s.msg_burst
        member_key = hashlib.sha256(f"{room_id}|{member_id}".encode()).hexdigest()[:24]
        quotas = []
        if s.msg_rate_per_s > 0:
            quotas.append(Quota("messages", f"m:{member_key}", s.msg_rate_per_s, s.msg_burst))
        if room_rate > 0:
            quotas.append(Quota("messages", "r", room_rate, room_burst))
        return tuple(quotas)
