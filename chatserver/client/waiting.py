"""A place in a session's lobby, until a host admits us (then `enter` joins the room)."""

from __future__ import annotations

import asyncio
from typing import Any

from chatserver import e2ee
from chatserver.client.errors import ChatError
from chatserver.client.ports import RoomHost
from chatserver.client.room import Room
from chatserver.links import RoomLink
from chatserver.protocol.ids import b64id


class Waiting:
    """A place in a session's lobby: nothing of the room is received until a host admits us."""

    def __init__(
        self,
        client: RoomHost,
        link: RoomLink,
        identity: e2ee.Identity,
        nickname: str | None,
        card: bytes,
    ) -> None:
        self.client = client
        self.card = card
        self.link = link
        self.identity = identity
        self.nickname = nickname
        self.member_id = b64id(identity.member_id)
        self.pseudonym = ""
        self.info: dict[str, Any] = {}
        self.declined_reason: str | None = None
        self._decision: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def _decided(self, admitted: bool, reason: str) -> None:
        if not admitted:
            self.declined_reason = reason or "declined"
            self.client._waiting.pop(self.link.room_id, None)
        if not self._decision.done():
            self._decision.set_result(admitted)

    async def admitted(self) -> bool:
        """True once admitted; False when declined (or the session ended)."""
        return await asyncio.shield(self._decision)

    async def enter(self) -> Room:
        """Join the room with the admitted identity (after `admitted()` returned True)."""
        if self.link.room_id in self.client.rooms:
            raise ChatError("already_member", "This client is already in the room.")
        self.client._waiting.pop(self.link.room_id, None)
        room = Room(self.client, self.link, self.nickname, self.identity, self.card)
        self.client.rooms[self.link.room_id] = room
        try:
            await room._join()
        except BaseException:
            self.client.rooms.pop(self.link.room_id, None)
            raise
        return room


# --- one room --------------------------------------------------------------------------------
