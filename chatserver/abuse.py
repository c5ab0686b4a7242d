"""Abuse limits beyond the per-connection buckets: per address (hashed), per member, per room, cluster-wide.

- **Addresses are never kept.** A connection's address becomes HMAC-SHA256(salt, address) at connect;
  the salt is random, lives only in this process's memory and is replaced every UTC day, so a hash
  cannot be linked to the address, nor to the same address on another day. IPv6 addresses count
  per /64 (one host usually holds a whole /64). The hash is forgotten when the connection closes.
- **The address** is the TCP peer; `X-Forwarded-For` is read only when the peer is one of
  `trusted_proxies`, and then the right-most address that is not itself a trusted proxy is used.
  Addresses in `address_limit_exempt` (loopback by default, for a proxy on the same host that is
  not declared trusted) are not limited per address.
- **Cluster-wide** buckets go through the `RateLimiter` seam (Redis when the node is one of many):
  joins and room creations per address hash, room creations overall, messages per member and per
  room. Every refusal is `rate_limited` with `retry_after`.

Salts are per node, so per-address limits are per node in a cluster (documented in THREAT_MODEL.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chatserver.protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from chatserver.config import Settings
    from chatserver.gateway.state import LocalRegistry
    from chatserver.node import Node
    from chatserver.ports import Clock, RateLimiter

DAY_S = 86400.0
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """A comma-separated list of addresses or CIDR networks; raises ValueError on a bad entry."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    )


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: tuple[IPNetwork, ...]
) -> str | None:
    """The client's address: the peer, or (only behind a trusted proxy) from X-Forwarded-For."""
    addr = _ip(peer) if peer else None
    if addr is None:
        return None
    if forwarded_for and any(addr in net for net in trusted):
        for hop in reversed(forwarded_for.split(",")):
            hop_addr = _ip(hop)
            if hop_addr is None:
                break  # a malformed hop: trust nothing further left
            addr = hop_addr
            if not any(hop_addr in net for net in trusted):
                break
    return str(addr)


class AddressHasher:
    """HMAC of an address under a random salt kept in memory and replaced every UTC day."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._day = -1
        self._salt = b""

    def hash(self, address: str) -> str:
        day = int(self._clock.now() // DAY_S)
        if day != self._day:
            self._day, self._salt = day, secrets.token_bytes(32)
        addr = ipaddress.ip_address(address)
        if isinstance(addr, ipaddress.IPv6Address):
            key = ipaddress.ip_network(f"{addr}/64", strict=False).network_address.packed
        else:
            key = addr.packed
        return hmac.new(self._salt, key, hashlib.sha256).hexdigest()[:32]


class AbuseGuard:
    """One per node: the address hash of each connection and the cluster-wide checks."""

    def __init__(self, settings: Settings, limiter: RateLimiter, clock: Clock) -> None:
        self.settings = settings
        self.limiter = limiter
        self.clock = clock
        self.trusted = parse_networks(settings.trusted_proxies)
        self.exempt = parse_networks(settings.address_limit_exempt)
        self.hasher = AddressHasher(clock)
        # sid -> address hash (None: exempt or unknown); forgotten on disconnect.
        self.addresses: dict[str, str | None] = {}

    def connected(self, sid: str, environ: Mapping[str, Any]) -> None:
        self.addresses[sid] = self.address_key(environ)

    def address_key(self, environ: Mapping[str, Any]) -> str | None:
        """The connection's address hash; None when the address is exempt or unknown."""
        request = environ.get("aiohttp.request")
        peer = getattr(request, "remote", None) if request is not None else None
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        address = client_address(
            peer if isinstance(peer, str) else None,
            forwarded if isinstance(forwarded, str) else None,
            self.trusted,
        )
        if address is None or any(ipaddress.ip_address(address) in n for n in self.exempt):
            return None
        return self.hasher.hash(address)

    def disconnected(self, sid: str) -> None:
        self.addresses.pop(sid, None)

    async def _hit(self, key: str, rate: float, burst: int, what: str) -> None:
        if rate <= 0:
            return
        wait = await self.limiter.hit(key, rate, burst, self.clock.now())
        if wait > 0:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED, f"Too many {what}; slow down.", max(wait, 0.001)
            )

    async def check_join(self, sid: str) -> None:
        s = self.settings
        address = self.addresses.get(sid)
        if address is not None:
            await self._hit(
                f"join:a:{address}", s.address_join_rate_per_s, s.address_join_burst, "joins"
            )

    async def check_create(self, sid: str) -> None:
        s = self.settings
        address = self.addresses.get(sid)
        if address is not None:
            await self._hit(
                f"create:a:{address}",
                s.address_create_rate_per_s,
                s.address_create_burst,
                "rooms created",
            )
        await self._hit(
            "create:all", s.cluster_create_rate_per_s, s.cluster_create_burst, "rooms created"
        )

    async def check_message(self, room_id: str, member_id: str) -> None:
        """Per member (so a reconnect does not refill the bucket) and per room, cluster-wide."""
        s = self.settings
        room_rate = s.room_msg_rate_per_s or 10 * s.msg_rate_per_s
        room_burst = s.room_msg_burst or 10 * s.msg_burst
        # Bucket keys outlive the room by a few seconds: they name it only by a digest.
        room_key = hashlib.sha256(room_id.encode()).hexdigest()[:24]
        member_key = hashlib.sha256(f"{room_id}|{member_id}".encode()).hexdigest()[:24]
        member, room = await asyncio.gather(
            self._wait(f"msg:m:{member_key}", s.msg_rate_per_s, s.msg_burst),
            self._wait(f"msg:r:{room_key}", room_rate, room_burst),
        )
        wait = max(member, room)
        if wait > 0:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED, "Too many messages; slow down.", max(wait, 0.001)
            )

    async def _wait(self, key: str, rate: float, burst: int) -> float:
        if rate <= 0:
            return 0.0
        return await self.limiter.hit(key, rate, burst, self.clock.now())


_GUARDS: weakref.WeakKeyDictionary[LocalRegistry, AbuseGuard] = weakref.WeakKeyDictionary()


def guard(node: Node) -> AbuseGuard:
    """The node's guard, made on first use."""
    found = _GUARDS.get(node.registry)
    if found is None:
        found = _GUARDS[node.registry] = AbuseGuard(node.settings, node.limiter, node.clock)
    return found
