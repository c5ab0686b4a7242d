"""chatserver/addresses.py and abuse.py: client address behind trusted proxies only, keys derived per
day from the server key and bound to their use and room, and per-address join and creation limits
that answer with retry_after (memory and Redis)."""

from __future__ import annotations

from chatserver.addresses import AddressKeys, client_address, group_of, parse_networks
from tests.conftest import MovableClock, ServerFactory
from tests.members import TestMember

TRUSTED = parse_networks("10.0.0.0/8, 192.0.2.1")


def test_forwarded_for_is_read_only_from_trusted_proxies() -> None:
    assert client_address("203.0.113.9", "198.51.100.7", TRUSTED) == "203.0.113.9"
    assert client_address("10.1.2.3", "198.51.100.7", TRUSTED) == "198.51.100.7"
    # The right-most untrusted hop wins: a client cannot prepend a fake address.
    assert client_address("10.1.2.3", "1.2.3.4, 198.51.100.7, 10.9.9.9", TRUSTED) == "198.51.100.7"
    assert client_address("192.0.2.1", "garbage", TRUSTED) == "192.0.2.1"
    assert client_address("::ffff:10.1.2.3", "2001:db8::1", TRUSTED) == "2001:db8::1"
    assert client_address(None, "198.51.100.7", TRUSTED) is None


def test_address_keys_rotate_daily_bind_room_and_use_and_group_ipv6_by_64() -> None:
    clock = MovableClock()
    keys = AddressKeys(b"S" * 32, clock)
    v4 = group_of("198.51.100.7")
    first = keys.limit_key(v4)
    assert first == keys.limit_key(group_of("198.51.100.7"))
    assert "198" not in first and len(first) == 32
    assert group_of("2001:db8::1") == group_of("2001:db8::ffff")
    assert group_of("2001:db8::1") != group_of("2001:db8:0:1::1")
    # Every node of a cluster derives the same keys from the same server key; another key, others.
    assert AddressKeys(b"S" * 32, clock).limit_key(v4) == first
    assert AddressKeys(b"T" * 32, clock).limit_key(v4) != first
    # Keys of one person in two rooms, or for two uses, are unrelated values.
    assert keys.ban_key("room-a", v4) != keys.ban_key("room-b", v4)
    assert keys.report_key("room-a", v4) != keys.ban_key("room-a", v4)[5:]
    ban_today = keys.ban_key("room-a", v4)
    clock.advance(86400)
    assert keys.limit_key(v4) != first  # a new day, a new key
    # A ban made yesterday still holds today (rooms live at most a day), not the day after.
    assert ban_today in keys.ban_keys("room-a", v4)
    clock.advance(86400)
    assert ban_today not in keys.ban_keys("room-a", v4)


async def test_join_rate_per_address_is_refused_with_retry_after(
    make_server: ServerFactory,
) -> None:
    server = await make_server(
        address_limit_exempt="", address_join_rate_per_s=0.01, address_join_burst=2
    )
    c = await server.client()
    room_id = (await c.call("room.create", {"listed": True, "topic": "joins"}))["room"]["room_id"]
    await TestMember.join(server, room_id)
    await TestMember.join(server, room_id)
    # A fresh connection from the same address does not get a fresh allowance.
    third = TestMember(await server.client(), room_id)
    ack = await third.join_ack()
    assert ack["ok"] is False
    assert ack["error"]["code"] == "rate_limited"
    assert ack["error"]["retry_after"] > 0


async def test_room_creation_per_address_and_cluster_wide(make_server: ServerFactory) -> None:
    server = await make_server(
        address_limit_exempt="", address_create_rate_per_s=0.01, address_create_burst=2
    )
    acks = []
    for _ in range(3):
        c = await server.client()
        acks.append(await c.call("room.create", {"listed": True, "topic": "many"}))
    assert [a["ok"] for a in acks] == [True, True, False]
    assert acks[2]["error"]["code"] == "rate_limited" and acks[2]["error"]["retry_after"] > 0
    server2 = await make_server(cluster_create_rate_per_s=0.01, cluster_create_burst=1)
    c = await server2.client()
    assert (await c.call("room.create", {"listed": True, "topic": "one"}))["ok"]
    c2 = await server2.client()
    refused = await c2.call("room.create", {"listed": True, "topic": "two"})
    assert refused["error"]["code"] == "rate_limited" and refused["error"]["retry_after"] > 0


async def test_loopback_is_exempt_by_default(make_server: ServerFactory) -> None:
    server = await make_server(address_join_rate_per_s=0.01, address_join_burst=1)
    c = await server.client()
    room_id = (await c.call("room.create", {"listed": True, "topic": "local"}))["room"]["room_id"]
    for _ in range(3):
        await TestMember.join(server, room_id)


def test_a_seat_keeps_its_address_group_for_the_resume_grace_only() -> None:
    """A ban issued while the member is away (within the grace) still keys the address; after the
    grace nothing of the address is kept."""
    from chatserver.abuse import AbuseGuard
    from chatserver.backends.memory.ratelimit import MemoryRateLimiter
    from chatserver.config import Settings

    clock = MovableClock()
    guard = AbuseGuard(Settings(resume_grace_s=20), MemoryRateLimiter(), clock, b"S" * 32)

    class Request:
        remote = "2001:db8:9:9::1"

    guard.connected("sid-1", {"aiohttp.request": Request()})
    assert guard.seat_group("room", "m1", "sid-1") == group_of("2001:db8:9:9::1")
    guard.disconnected("sid-1", [("room", "m1")])
    assert guard.seat_group("room", "m1", None) == group_of("2001:db8:9:9::ffff")
    clock.advance(21)
    assert guard.seat_group("room", "m1", None) is None
    guard.disconnected("sid-other")  # any later disconnect prunes what lapsed
    assert guard.recent == {}
