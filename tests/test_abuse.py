"""chatserver/abuse.py: client address behind trusted proxies only, salted daily hashes kept in
memory, and per-address join and creation limits that answer with retry_after (memory and Redis)."""

from __future__ import annotations

from chatserver.abuse import AddressHasher, client_address, parse_networks
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


def test_hashes_are_salted_rotate_daily_and_group_ipv6_by_64() -> None:
    clock = MovableClock()
    hasher = AddressHasher(clock)
    first = hasher.hash("198.51.100.7")
    assert first == hasher.hash("198.51.100.7")
    assert "198" not in first and len(first) == 32
    assert hasher.hash("2001:db8::1") == hasher.hash("2001:db8::ffff")
    assert hasher.hash("2001:db8::1") != hasher.hash("2001:db8:0:1::1")
    assert AddressHasher(clock).hash("198.51.100.7") != first  # another process, another salt
    clock.advance(86400)
    assert hasher.hash("198.51.100.7") != first  # a new day, a new salt


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
