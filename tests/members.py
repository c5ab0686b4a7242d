"""A test member: a per-room identity, its E2EE state, and a Socket.IO client."""

from __future__ import annotations

import time
from typing import Any

from chatserver import e2ee
from chatserver.e2ee.seat import sign_seat
from chatserver.protocol import MAX_KEY_SHARES
from chatserver.protocol.ids import b64id, unb64id
from tests.conftest import Client, RunningServer


async def prove_seat(
    client: Client, room_id: str, identity: e2ee.Identity, secret: e2ee.RoomSecret | None = None
) -> dict[str, bytes]:
    """Answer a fresh room challenge: `seat_proof` (and `proof`, for a private room's link)."""
    challenge = await client.call("room.challenge", {"room_id": room_id})
    assert challenge["ok"], challenge
    nonce = challenge["nonce"]
    fields = {"seat_proof": sign_seat(identity, unb64id(room_id), nonce)}
    if secret is not None:
        fields["proof"] = secret.sign_join(nonce, identity.member_id)
    return fields


class TestMember:
    """Joins with a fresh identity and seals real envelopes."""

    __test__ = False

    def __init__(self, client: Client, room_id: str, identity: e2ee.Identity | None = None) -> None:
        self.client = client
        self.room_id = room_id
        self.identity = identity or e2ee.Identity.generate()
        self.crypto = e2ee.RoomCrypto(self.identity, unb64id(room_id))
        self.member_id = b64id(self.identity.member_id)
        self.joined: dict[str, Any] = {}

    @classmethod
    async def join(
        cls,
        server: RunningServer,
        room_id: str,
        secret: e2ee.RoomSecret | None = None,
        **extra: Any,
    ) -> TestMember:
        member = cls(await server.client(), room_id)
        ack = await member.join_ack(secret, **extra)
        assert ack["ok"], ack
        return member

    async def join_ack(self, secret: e2ee.RoomSecret | None = None, **extra: Any) -> Any:
        payload: dict[str, Any] = {
            "room_id": self.room_id,
            "card": self.crypto.card,
            **await prove_seat(self.client, self.room_id, self.identity, secret),
            **extra,
        }
        if secret is not None:
            payload.setdefault("member_proof", secret.sign_member(self.identity.member_id))
        ack = await self.client.call("room.join", payload)
        if ack["ok"]:
            self.joined = ack
            self.crypto.set_epoch(ack["room"]["epoch"])
            for m in ack["members"]:
                if m["member_id"] != self.member_id:
                    self.crypto.add_member(m["card"])
        return ack

    async def next_other(self, name: str) -> Any:
        """The next `name` push about someone else (pushes about this member's own join are skipped)."""
        _, data = await self.client.next(
            name,
            where=lambda d: (
                d.get("member", {}).get("member_id", d.get("member_id")) != self.member_id
            ),
        )
        return data

    def envelope(self, text: str) -> bytes:
        return self.crypto.encrypt(text)

    async def send(self, text: str) -> Any:
        await self.share_keys()
        return await self.client.call(
            "msg.send", {"room_id": self.room_id, "env": self.envelope(text)}
        )

    async def share_keys(self) -> None:
        shares = [
            {"to": b64id(recipient), "skd": skd}
            for recipient, skd in self.crypto.pending_key_shares()
        ]
        for start in range(0, len(shares), MAX_KEY_SHARES):
            batch = shares[start : start + MAX_KEY_SHARES]
            ack = await self.client.call("key.send", {"room_id": self.room_id, "shares": batch})
            assert ack["ok"] and not ack["refused"], ack


def now_ms() -> int:
    return int(time.time() * 1000)
