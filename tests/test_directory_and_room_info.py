"""The directory lists only rooms someone is in (a seat in its resume grace counts, as the member
count does), and `room.info` tells the join page what the room is before joining: a listed room's
topic to anyone with its id, a private room's encrypted title only to a holder of its link."""

from __future__ import annotations

import asyncio
from typing import Any

from chatserver import e2ee
from chatserver.e2ee.charter import make_charter
from chatserver.e2ee.room_secret import open_meta, seal_meta
from chatserver.protocol.ids import b64id
from tests.conftest import Client, RunningServer, ServerFactory
from tests.members import TestMember
from tests.test_gateway import create_listed

ZERO_ID = bytes(16)


async def listed_ids(client: Client) -> dict[str, int]:
    ack = await client.call("room.list", {})
    assert ack["ok"], ack
    return {r["room_id"]: r["members"] for r in ack["rooms"]}


async def wait_for(check: Any, what: str, server: RunningServer | None = None) -> None:
    for _ in range(100):
        if await check():
            return
        if server is not None:
            server.clock.advance(1)
        await asyncio.sleep(0.05)
    raise AssertionError(what)


async def test_an_empty_room_is_not_listed(make_server: ServerFactory) -> None:
    server = await make_server(resume_grace_s=5.0)
    room_id = await create_listed(server, "quiet evenings")
    lister = await server.client()
    assert room_id not in await listed_ids(lister)  # created, nobody in it yet
    alice = await TestMember.join(server, room_id)
    assert (await listed_ids(lister))[room_id] == 1
    bob = await TestMember.join(server, room_id)
    assert (await listed_ids(lister))[room_id] == 2
    assert (await alice.client.call("room.leave", {"room_id": room_id}))["ok"]
    assert (await listed_ids(lister))[room_id] == 1
    # Bob's phone drops: his seat waits out the resume grace, and still counts meanwhile.
    await bob.client.close()
    await asyncio.sleep(0.3)
    assert (await listed_ids(lister)).get(room_id) == 1
    # Once the grace is over the seat is gone, and so is the room from the directory (it still
    # exists for its empty grace: room.info answers).

    async def unlisted() -> bool:
        return room_id not in await listed_ids(lister)

    await wait_for(unlisted, "the lapsed seat kept the room listed", server)
    info = await lister.call("room.info", {"room_id": room_id})
    assert info["ok"], info
    for entry in (await lister.call("room.list", {}))["rooms"]:
        assert entry["members"] >= 1


async def test_room_info_for_a_listed_room(server: RunningServer) -> None:
    room_id = await create_listed(server, "sleep")
    alice = await TestMember.join(server, room_id)
    visitor = await server.client()
    ack = await visitor.call("room.info", {"room_id": room_id})
    assert ack["ok"], ack
    room = ack["room"]
    assert room == {
        "room_id": room_id,
        "kind": "peer",
        "visibility": "listed",
        "topic": "sleep",
        "title": None,
        "state": "open",
        "host_id": None,
        "badge": None,
        "charter": None,
        "starts_at": None,
    }
    # Nothing about who is in it.
    assert alice.member_id not in str(ack) and "pseudonym" not in str(ack)
    missing = await visitor.call("room.info", {"room_id": b64id(b"\x01" * 16)})
    assert missing["error"]["code"] == "room_not_found"
    bad = await visitor.call("room.info", {"room_id": "not an id"})
    assert bad["error"]["code"] == "bad_request"
    extra = await visitor.call("room.info", {"room_id": room_id, "members": True})
    assert extra["error"]["code"] == "bad_request"


async def test_room_info_of_a_private_room_answers_only_the_link_holder(
    server: RunningServer,
) -> None:
    secret = e2ee.new_room_secret()
    room_id = b64id(secret.room_id)
    title = seal_meta(secret.meta_key, secret.room_id, "Tuesday circle")
    charter = make_charter(secret, None, lobby=False)
    owner = await server.client()
    created = await owner.call(
        "room.create",
        {
            "room_id": room_id,
            "join_key": secret.join_public,
            "title": title,
            "charter": charter,
        },
    )
    assert created["ok"], created
    stranger = await server.client()
    # No challenge first, no proof, a proof from another link: refused, nothing shown.
    assert (await stranger.call("room.info", {"room_id": room_id}))["error"][
        "code"
    ] == "no_challenge"
    for proof, code in ((None, "join_proof_required"), (b"\x00" * 64, "bad_proof")):
        nonce = (await stranger.call("room.challenge", {"room_id": room_id}))["nonce"]
        assert nonce
        ack = await stranger.call("room.info", {"room_id": room_id, "proof": proof})
        assert ack["error"]["code"] == code, ack
        assert title not in str(ack).encode() and "charter" not in str(ack)
    forged = e2ee.new_room_secret()
    nonce = (await stranger.call("room.challenge", {"room_id": room_id}))["nonce"]
    ack = await stranger.call(
        "room.info", {"room_id": room_id, "proof": forged.sign_join(nonce, ZERO_ID)}
    )
    assert ack["error"]["code"] == "bad_proof"

    holder = await server.client()
    nonce = (await holder.call("room.challenge", {"room_id": room_id}))["nonce"]
    proof = secret.sign_join(nonce, ZERO_ID)
    ack = await holder.call("room.info", {"room_id": room_id, "proof": proof})
    assert ack["ok"], ack
    assert ack["room"]["title"] == title and ack["room"]["charter"] == charter
    assert open_meta(secret.meta_key, secret.room_id, ack["room"]["title"]) == "Tuesday circle"
    assert ack["room"]["visibility"] == "unlisted" and ack["room"]["topic"] is None
    # The nonce is spent: the same proof answers nothing again, and takes no seat.
    again = await holder.call("room.info", {"room_id": room_id, "proof": proof})
    assert again["error"]["code"] == "no_challenge"
    member = TestMember(holder, room_id)
    joined = await member.join_ack(secret)
    assert joined["ok"], joined
    assert [m["member_id"] for m in joined["members"]] == [member.member_id]


async def test_room_info_is_rate_limited(make_server: ServerFactory) -> None:
    server = await make_server(control_burst=3, control_rate_per_s=0.01)
    room_id = await create_listed(server, "grief")
    c = await server.client()
    answers = [await c.call("room.info", {"room_id": room_id}) for _ in range(4)]
    assert [a["ok"] for a in answers[:3]] == [True, True, True]
    assert answers[3]["error"]["code"] == "rate_limited" and answers[3]["error"]["retry_after"] > 0


async def test_room_info_says_when_the_room_has_ended(server: RunningServer) -> None:
    owner = await server.client()
    created = await owner.call("room.create", {"listed": True, "topic": "ending"})
    room_id = created["room"]["room_id"]
    alice = await TestMember.join(server, room_id)
    assert (await alice.client.call("room.leave", {"room_id": room_id}))["ok"]
    visitor = await server.client()
    ack = await visitor.call("room.info", {"room_id": room_id})
    assert ack["ok"] and ack["room"]["state"] == "open"
    server.clock.advance(10_000)  # past the empty grace: the room ends and is gone

    async def gone() -> bool:
        answer = await visitor.call("room.info", {"room_id": room_id})
        return not answer["ok"] and answer["error"]["code"] in ("room_not_found", "room_ended")

    await wait_for(gone, "the ended room still answered")
