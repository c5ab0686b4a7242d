"""One address identity: the client's address, its group, and every keyed hash of it.

- **The address** is the TCP peer; `X-Forwarded-For` is read only when the peer is one of
  `trusted_proxies`, and then the right-most address that is not itself a trusted proxy is used.
- **The group** is what one person usually holds: an IPv4 address, or an IPv6 /64. Every limit and
  every ban treats a group as one.
- **The keys** are HMAC-SHA256 under a day key derived from the server key (HKDF over the key and the
  UTC day), which every node of a cluster already loads; the day key lives in memory only, and no
  salt or key is ever written to Redis, disk or a log. Each use has its own label, and a room's keys
  also bind the room id, so the same person's keys in two rooms are unrelated values.

Nothing here is stored: the rate limiter keeps per-address buckets in this node's memory, and Redis
only ever sees the room key of a member who was banned (`chatserver.gateway.bans`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from typing import Any

from chatserver.e2ee.primitives import hkdf_sha256
from chatserver.ports import Clock

DAY_S = 86400.0
_DAY_KEY_INFO = b"chatserver/address-day-key/v1"
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


def environ_address(environ: Mapping[str, Any], trusted: tuple[IPNetwork, ...]) -> str | None:
    """The address of a Socket.IO connection, from the environ python-socketio keeps for it."""
    request = environ.get("aiohttp.request")
    peer = getattr(request, "remote", None) if request is not None else None
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    return client_address(
        peer if isinstance(peer, str) else None,
        forwarded if isinstance(forwarded, str) else None,
        trusted,
    )


def group_of(address: str) -> bytes:
    """An IPv4 address, or the /64 of an IPv6 address, as bytes with its family."""
    addr = ipaddress.ip_address(address)
    if isinstance(addr, ipaddress.IPv6Address):
        return b"6" + addr.packed[:8]
    return b"4" + addr.packed


class AddressKeys:
    """Keyed hashes of address groups under the day key; today's key is derived once a day."""

    def __init__(self, server_seed: bytes, clock: Clock) -> None:
        self._seed = server_seed
        self._clock = clock
        self._keys: dict[int, bytes] = {}

    def _day_key(self, day: int) -> bytes:
        key = self._keys.get(day)
        if key is None:
            key = hkdf_sha256(self._seed, None, _DAY_KEY_INFO + day.to_bytes(4, "big"), 32)
            # Keep today and yesterday only (a ban made before midnight is checked after it).
            self._keys = {d: k for d, k in self._keys.items() if d >= day - 1}
            self._keys[day] = key
        return key

    def _today(self) -> int:
        return int(self._clock.now() // DAY_S)

    def _mac(self, day: int, label: bytes, *parts: bytes) -> str:
        mac = hmac.new(self._day_key(day), label, hashlib.sha256)
        for part in parts:
            mac.update(len(part).to_bytes(2, "big") + part)
        return mac.hexdigest()[:32]

    def limit_key(self, group: bytes) -> str:
        """The group's key for this node's per-address buckets (kept in memory only)."""
        return self._mac(self._today(), b"limit", group)

    def ban_key(self, room_id: str, group: bytes) -> str:
        """What a room ban records for a group: today's key, bound to the room."""
        return "addr:" + self._mac(self._today(), b"ban", room_id.encode(), group)

    def ban_keys(self, room_id: str, group: bytes) -> frozenset[str]:
        """What a join is checked against: today's and yesterday's ban keys (rooms live a day)."""
        today = self._today()
        return frozenset(
            "addr:" + self._mac(day, b"ban", room_id.encode(), group) for day in (today, today - 1)
        )

    def report_key(self, room_id: str, group: bytes) -> str:
        """A reporter's group in one room: reports of one group count once."""
        return self._mac(self._today(), b"report", room_id.encode(), group)
