"""`key.send` carries a batch of sealed sender keys: one request, one rate-limit token and one bus
call for many recipients; a bad share is refused on its own, a bad request as a whole.

Real nodes (memory and Redis), real Socket.IO clients, real E2EE: no mocks."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest

from chatserver import e2ee
from chatserver.client import MemberJoined, MemberLeft, Room
from chatserver.client.room_keys import _next_batch
from chatserver.config import Settings
from chatserver.e2ee.constants import SIG_LEN
from chatserver.e2ee.skd import seal_skd
from chatserver.protocol import CATALOGUE, MAX_KEY_SHARES, MAX_SKD_BYTES
from chatserver.protocol.ids import b64id, unb64id
from tests.conftest import RunningServer
from tests.members import TestMember
from tests.test_client import next_event, texts
from tests.test_gateway import create_listed

NOBODY = "Z" * 21 + "A"


def key_sends(server: RunningServer) -> int:
    """Every `key.send` request the node answered, whatever the outcome."""
    return sum(n for key, n in server.node.stats.requests.items() if key.startswith("key.send:"))


async def room_of(server: RunningServer, n: int, **extra: Any) -> list[TestMember]:
    """`n` members of a fresh listed room; the first knows every other's card."""
    room_id = await create_listed(server, **extra)
    members = [await TestMember.join(server, room_id) for _ in range(n)]
    for other in members[1:]:
        members[0].crypto.add_member(other.crypto.card)
    return members


def shares_of(sender: TestMember) -> dict[str, bytes]:
    """The sender's current chain sealed to each member it knows, by member id."""
    return {b64id(to): skd for to, skd in sender.crypto.pending_key_shares()}


def batch(room_id: str, shares: list[tuple[str, bytes]]) -> dict[str, Any]:
    return {"room_id": room_id, "shares": [{"to": to, "skd": skd} for to, skd in shares]}


async def keys_pushed(member: TestMember, wait: float = 0.2) -> list[bytes]:
    await asyncio.sleep(wait)
    return [data["skd"] for event, data in member.client.drain() if event == "key"]


async def test_one_request_hands_every_recipient_its_share(server: RunningServer) -> None:
    alice, *others = await room_of(server, 6)
    shares = shares_of(alice)
    assert set(shares) == {m.member_id for m in others}
    before = key_sends(server)
    ack = await alice.client.call("key.send", batch(alice.room_id, list(shares.items())))
    assert ack == {"ok": True, "delivered": 5, "refused": []}
    assert key_sends(server) - before == 1
    for member in others:
        _, push = await member.client.next("key")
        assert push == {
            "room_id": alice.room_id,
            "from": alice.member_id,
            "skd": shares[member.member_id],
        }
        member.crypto.receive_key_share(push["skd"])  # it opens: alice's next message reads
    env = alice.envelope("to all five")
    assert (await alice.client.call("msg.send", {"room_id": alice.room_id, "env": env}))["ok"]
    for member in others:
        _, msg = await member.client.next("msg")
        assert member.crypto.decrypt(msg["env"]).text == "to all five"


async def test_a_bad_share_is_refused_alone(server: RunningServer) -> None:
    alice, bob, carol, dave, erin, frank, grace = await room_of(server, 7)
    shares = shares_of(alice)
    room_key = unb64id(alice.room_id)
    epoch = alice.joined["room"]["epoch"]

    def sealed(to: TestMember, **fields: Any) -> bytes:
        return seal_skd(
            alice.identity,
            e2ee.parse_card(to.crypto.card, room_key),
            **{
                "room_id": room_key,
                "epoch": epoch,
                "key_id": 9,
                "start_index": 0,
                "chain_key": b"k" * 32,
                **fields,
            },
        )

    forged = bytearray(shares[carol.member_id])
    forged[-SIG_LEN] ^= 1
    request = [
        (bob.member_id, shares[bob.member_id]),  # good
        (carol.member_id, bytes(forged)),  # signature broken
        (dave.member_id, shares[erin.member_id]),  # sealed to someone else than `to`
        (NOBODY, shares[bob.member_id]),  # not a member
        (erin.member_id, sealed(erin, epoch=epoch + 1)),  # another epoch
        (bob.member_id, shares[bob.member_id]),  # bob twice in one batch
        (frank.member_id, b"\x01" * 249),  # not an SKD
        (grace.member_id, sealed(grace, room_id=b"\x07" * 16)),  # for another room
    ]
    ack = await alice.client.call("key.send", batch(alice.room_id, request))
    assert ack["ok"] is True and ack["delivered"] == 1, ack
    assert ack["refused"] == [
        {"to": carol.member_id, "code": "bad_signature"},
        {"to": dave.member_id, "code": "unknown_recipient"},
        {"to": NOBODY, "code": "unknown_recipient"},
        {"to": erin.member_id, "code": "stale_epoch"},
        {"to": bob.member_id, "code": "duplicate_recipient"},
        {"to": frank.member_id, "code": "bad_envelope"},
        {"to": grace.member_id, "code": "wrong_room"},
    ]
    assert all(r["code"] in CATALOGUE for r in ack["refused"])
    assert await keys_pushed(bob) == [shares[bob.member_id]]
    for member in (carol, dave, erin, frank, grace):
        assert await keys_pushed(member, 0) == []


@pytest.mark.parametrize(
    ("shape", "code"),
    [
        ("empty", "bad_request"),
        ("too_many", "payload_too_large"),
        ("oversized_skd", "payload_too_large"),
        ("unknown_field", "bad_request"),
        ("single_form", "bad_request"),
        ("not_a_list", "bad_request"),
    ],
)
async def test_a_malformed_batch_fails_whole_and_changes_nothing(
    server: RunningServer, shape: str, code: str
) -> None:
    alice, bob = await room_of(server, 2)
    good = {"to": bob.member_id, "skd": shares_of(alice)[bob.member_id]}
    payload: dict[str, Any] = {
        "empty": {"room_id": alice.room_id, "shares": []},
        "too_many": {"room_id": alice.room_id, "shares": [good] * (MAX_KEY_SHARES + 1)},
        "oversized_skd": {
            "room_id": alice.room_id,
            "shares": [good, {"to": NOBODY, "skd": b"x" * (MAX_SKD_BYTES + 1)}],
        },
        "unknown_field": {"room_id": alice.room_id, "shares": [{**good, "note": "hi"}]},
        "single_form": {"room_id": alice.room_id, **good},
        "not_a_list": {"room_id": alice.room_id, "shares": good},
    }[shape]
    bucket = alice.client  # the same connection: its message bucket must be untouched
    before = server.node.stats.requests[f"key.send:{code}"]
    ack = await bucket.call("key.send", payload)
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert code in CATALOGUE
    assert server.node.stats.requests[f"key.send:{code}"] == before + 1
    assert await keys_pushed(bob) == []
    # The connection goes on, and the good share still goes through on its own.
    ack = await alice.client.call("key.send", {"room_id": alice.room_id, "shares": [good]})
    assert ack == {"ok": True, "delivered": 1, "refused": []}


async def test_a_batch_needs_a_seat_and_a_room(server: RunningServer) -> None:
    alice, bob = await room_of(server, 2)
    outsider = await server.client()
    share = [(bob.member_id, shares_of(alice)[bob.member_id])]
    ack = await outsider.call("key.send", batch(alice.room_id, share))
    assert ack["error"]["code"] == "not_in_room"
    assert await keys_pushed(bob) == []


async def test_the_largest_batch_fits_one_frame(server: RunningServer) -> None:
    """MAX_KEY_SHARES shares of MAX_SKD_BYTES each, with their ids, fit the default frame limit
    as a whole Socket.IO packet, and a live node takes such a frame (each share then refused on
    its own: nobody here is a member)."""
    alice, _ = await room_of(server, 2)
    recipients = [b64id(i.to_bytes(16, "big")) for i in range(MAX_KEY_SHARES)]
    payload = batch(alice.room_id, [(to, b"\xff" * MAX_SKD_BYTES) for to in recipients])
    packet = {"type": 2, "nsp": "/", "data": ["key.send", payload], "id": 2**32 - 1}
    assert len(msgpack.packb(packet, use_bin_type=True)) < Settings().max_frame_bytes
    assert len(msgpack.packb(packet, use_bin_type=True)) < 0.9 * 80 * 1024  # room to spare
    ack = await alice.client.call("key.send", payload)
    assert ack["ok"] is True and ack["delivered"] == 0
    assert ack["refused"] == [{"to": to, "code": "unknown_recipient"} for to in recipients]


async def test_a_batch_takes_one_rate_limit_token(make_server: Any) -> None:
    """With 3 tokens and (almost) no refill: a batch to 30 members goes through where 30
    single-share requests would not."""
    server = await make_server(msg_rate_per_s=0.001, msg_burst=3)
    alice, *others = await room_of(server, 31)
    shares = shares_of(alice)
    ack = await alice.client.call("key.send", batch(alice.room_id, list(shares.items())))
    assert ack == {"ok": True, "delivered": 30, "refused": []}
    singles = [
        await alice.client.call(
            "key.send", batch(alice.room_id, [(m.member_id, shares[m.member_id])])
        )
        for m in others
    ]
    assert [a["ok"] for a in singles[:2]] == [True, True]
    assert {a["error"]["code"] for a in singles[2:]} == {"rate_limited"}
    assert all(a["error"]["retry_after"] > 0 for a in singles[2:])


# The Python client end to end ----------------------------------------------------------------


async def read_everyone(rooms: list[Room], tag: str) -> None:
    """Each member sends one message; each reads every other member's."""
    for room in rooms:
        await room.send(f"{tag} from {room.member_id}")
    expected = {room.member_id: f"{tag} from {room.member_id}" for room in rooms}
    got = await asyncio.gather(*(texts(room, len(rooms) - 1, timeout=30) for room in rooms))
    for room, messages in zip(rooms, got, strict=True):
        assert {m.sender_id: m.text for m in messages} == {
            k: v for k, v in expected.items() if k != room.member_id
        }


async def test_a_room_of_thirty_fills_and_rekeys_with_a_request_per_member(
    server: RunningServer, clients: Any
) -> None:
    """Key shares cost about one request per member per join and per leave, not one per pair."""
    size = 30
    creator = await clients(server.url)
    link = (await creator.create_room(listed=True, topic="thirty")).link
    rooms: list[Room] = []
    for _ in range(size):
        rooms.append(await (await clients(server.url)).join(link))
    for room in rooms:
        async with asyncio.timeout(20):
            while len(room.members) < size:
                await next_event(room, MemberJoined)
    await read_everyone(rooms, "hello")
    joined = key_sends(server)
    # Each join: every member already there shares its chain with the newcomer (one request
    # each, or fewer when joins coalesce), and the newcomer shares its own in one request. One
    # request per pair and direction would be size * (size - 1) = 870.
    assert joined <= size * (size - 1) // 2 + 2 * size, server.node.stats.requests
    assert server.node.stats.requests["key.send:rate_limited"] <= size, server.node.stats.requests

    leaver, rooms = rooms[-1], rooms[:-1]
    await leaver.leave()
    for room in rooms:
        await next_event(room, MemberLeft)
    await read_everyone(rooms, "after")
    rekeyed = key_sends(server) - joined
    # Each sender seals a new chain to the 28 others: one batch each (870 - 58 singles before).
    assert rekeyed <= 2 * len(rooms), server.node.stats.requests


def test_the_client_batches_its_outbox_in_order_each_recipient_once() -> None:
    outbox = [(i.to_bytes(16, "big"), bytes([i % 256])) for i in range(300)]
    assert _next_batch(outbox) == outbox[:MAX_KEY_SHARES]
    twice = [outbox[0], outbox[1], (outbox[0][0], b"newer"), outbox[2]]
    assert _next_batch(twice) == twice[:2]  # the second share for outbox[0]'s member waits
    assert _next_batch([]) == []
