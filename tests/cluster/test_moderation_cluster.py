"""Host controls across two real nodes and one Redis: the host on one node, members on the other.
Every control reaches the other node through the ordered room bus; ending the session tells every
member within a second and leaves no key naming the room in Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, TypeVar

from chatserver import credentials
from chatserver.client import (
    LobbyUpdate,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    PinChanged,
    Room,
    RoomEnded,
    RoomUpdated,
)
from chatserver.links import RoomLink
from tests.cluster.conftest import ChatNodesFactory
from tests.cluster.harness import RedisServer
from tests.test_moderation import next_event, refused, text_of

E = TypeVar("E")


async def session_on_two_nodes(
    redis_server: RedisServer,
    chat_nodes: ChatNodesFactory,
    clients: Any,
    tmp_path: Path,
    **options: Any,
) -> tuple[Any, Room, RoomLink, str]:
    """Two nodes sharing a server key; a therapist on node A hosts a session. Returns the session,
    the host's room, the participants' link through node B, and node B's URL."""
    key_file = tmp_path / "server.key"
    key = credentials.load_server_key(key_file)
    token, _ = credentials.issue(key, "Dr. A. Rao", 30, time.time())
    node_a, node_b = await chat_nodes(
        2, redis=redis_server, key_file=str(key_file), control_burst=200, msg_burst=200
    )
    therapist = await clients(node_a.url)
    await therapist.sign_in(token)
    created = await therapist.create_session(title="Thursday 7 pm", **options)
    host = await therapist.join(created.host_link)
    # The same room, reached through node B.
    link_b = RoomLink(node_b.url, created.link.room_id, created.link.secret, None)
    return created, host, link_b, node_b.url


async def test_controls_across_two_nodes_and_the_end(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory, clients: Any, tmp_path: Path
) -> None:
    created, host, link_b, url_b = await session_on_two_nodes(
        redis_server, chat_nodes, clients, tmp_path
    )
    members: list[Room] = []
    for name in ("Ash", "Birch"):
        c = await clients(url_b)
        waiting = await c.knock(link_b, name)
        update = await next_event(host, LobbyUpdate)
        await host.admit(waiting.member_id, update.card)
        assert await asyncio.wait_for(waiting.admitted(), 5)
        members.append(await waiting.enter())
        await next_event(host, MemberJoined)
    a, b = members
    await host.send("welcome")
    assert (await text_of(a)).text == "welcome"
    assert (await text_of(b)).text == "welcome"
    # Refused to members without the role (on node B), with the documented code.
    await refused("forbidden", a.mute(b.member_id))
    await refused("forbidden", a.settings(locked=True))
    await refused("forbidden", a.end())
    # Mute from node A takes effect on node B.
    await host.mute(a.member_id)
    await next_event(a, MemberUpdated)
    await refused("muted", a.send("x"))
    await host.unmute(a.member_id)
    await next_event(a, MemberUpdated)
    # Pause and lock.
    await host.settings(paused=True)
    assert (await next_event(b, RoomUpdated)).paused
    await refused("paused", b.send("x"))
    await host.settings(paused=False, locked=True)
    late = await clients(url_b)
    await refused("room_locked", late.knock(link_b))
    await host.settings(locked=False)
    # Promote, then remove from node A: node B's member is out and everyone re-keys.
    await host.set_role(b.member_id, "moderator")
    await next_event(b, MemberUpdated)
    await b.mute(a.member_id)  # the new moderator acts from node B
    epoch = host.epoch
    await host.remove(a.member_id)
    assert (await next_event(a, MemberLeft)).reason == "removed"
    await next_event(host, MemberLeft)
    assert host.epoch == epoch + 1
    await host.send("after the removal")
    assert (await text_of(b)).text == "after the removal"
    # End: node B's member is told within a second; nothing of the room stays in Redis.
    started = asyncio.get_running_loop().time()
    await host.end()
    await next_event(b, RoomEnded, timeout=1.0)
    assert asyncio.get_running_loop().time() - started < 1.0
    redis = redis_server.client()
    try:
        keys = [k async for k in redis.scan_iter(match=f"*{created.room_id}*")]
        # State, meta, log, chains, holders, mailboxes, the message quotas: all gone at once.
        assert keys == [], keys
    finally:
        await redis.aclose()


async def test_pins_extension_and_readmission_across_two_nodes(
    redis_server: RedisServer, chat_nodes: ChatNodesFactory, clients: Any, tmp_path: Path
) -> None:
    _, host, link_b, url_b = await session_on_two_nodes(
        redis_server, chat_nodes, clients, tmp_path, duration_s=3600
    )

    async def admit(name: str) -> tuple[Any, Room]:
        c = await clients(url_b)
        waiting = await c.knock(link_b, name)
        update = await next_event(host, LobbyUpdate)
        await host.admit(waiting.member_id, update.card)
        assert await asyncio.wait_for(waiting.admitted(), 5)
        room = await waiting.enter()
        await next_event(host, MemberJoined)
        return waiting, room

    _, a = await admit("Ash")
    await host.pin(
        "Crisis lines are pinned here.", links=[("Samaritans", "https://samaritans.org")]
    )
    assert (await next_event(a, PinChanged)).pinned.text == "Crisis lines are pinned here."
    # A later joiner on node B reads the pin the host's client re-sends from node A.
    waiting_b, b = await admit("Birch")
    pinned = await next_event(b, PinChanged, timeout=8)
    assert pinned.pinned.links[0].url == "https://samaritans.org"
    # Extending the session on node A reaches node B.
    ends_at = a.ends_at
    assert ends_at is not None
    await host.settings(duration_s=4500)
    await next_event(b, RoomUpdated)
    assert b.ends_at == ends_at + 900
    # Birch leaves and comes back through node B without queueing, even into a locked room.
    await b.leave()
    await next_event(host, MemberLeft)
    await host.settings(locked=True)
    back = await waiting_b.enter()
    assert (await next_event(host, MemberJoined)).member_id == back.member_id
    assert (await next_event(back, PinChanged, timeout=8)).pinned.pin_id == pinned.pinned.pin_id
