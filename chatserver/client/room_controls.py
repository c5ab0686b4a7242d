"""A room's calls that ask the server to act: moderation, settings, pins, lobby, reports, Q&A."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from chatserver import credentials, e2ee
from chatserver.client.common import question_info
from chatserver.client.errors import ChatError
from chatserver.client.events import Message, Question, Sent
from chatserver.client.room_state import RoomState
from chatserver.e2ee.primitives import hpke_seal, u32
from chatserver.e2ee.question import sign_question
from chatserver.e2ee.roles import sign_role
from chatserver.pins import body_fields, check_links, new_pin_id
from chatserver.protocol.ids import unb64id


class RoomControls(RoomState):
    """Mixed into `Room`: each call is one request for the room, refused as a ChatError."""

    if TYPE_CHECKING:  # Room's

        async def send(self, text: str, *, pin: bool = False, **extra: Any) -> Sent: ...

    async def _control(self, event: str, **fields: Any) -> dict[str, Any]:
        return await self.client.request(event, {"room_id": self.room_id, **fields})

    async def mute(self, member_id: str, duration_s: float | None = None) -> None:
        fields: dict[str, Any] = {"member_id": member_id}
        if duration_s is not None:
            fields["duration_s"] = duration_s
        await self._control("member.mute", **fields)

    async def unmute(self, member_id: str) -> None:
        await self._control("member.unmute", member_id=member_id)

    async def remove(self, member_id: str, *, ban: bool = False) -> None:
        await self._control("member.remove", member_id=member_id, ban=ban)

    async def set_role(self, member_id: str, role: Literal["member", "moderator", "host"]) -> None:
        """Change a member's role (hosts only), with our signed statement that members check."""
        assert self._crypto is not None
        proof = sign_role(
            self._crypto._identity,
            unb64id(self.room_id),
            unb64id(member_id),
            role,
            int(time.time() * 1000),
        )
        await self._control("member.role", member_id=member_id, role=role, role_proof=proof)

    async def settings(self, **fields: Any) -> dict[str, Any]:
        """Any of locked, paused, slow_mode_s, qa, rules (bytes; b"" removes them)."""
        ack = await self._control("room.settings", **fields)
        return dict(ack["room"])

    async def pin(self, text: str, links: list[tuple[str, str]] | None = None) -> Sent:
        """Pin a message, optionally with a resource list of (label, https URL) pairs.

        Every member sees it, later joiners too: our client re-sends it under the current keys
        whenever someone joins (the same pin, not a new one)."""
        fields = body_fields(new_pin_id(), check_links(links or []))
        return await self.send(text, pin=True, **fields)

    async def unpin(self) -> None:
        await self._control("pin.clear")

    async def end(self) -> None:
        """End the session for everyone (the room and its buffers are deleted on every node)."""
        await self._control("room.end")

    async def lobby_waiting(self) -> list[dict[str, Any]]:
        ack = await self._control("lobby.list")
        return list(ack["waiting"])

    async def admit(self, member_id: str, card: bytes | None = None) -> None:
        """Admit a waiter: sign its card with our per-room key (members check the signature)."""
        if card is None:
            found = [w for w in await self.lobby_waiting() if w["member_id"] == member_id]
            if not found:
                raise ChatError("not_waiting", "Nobody with this id is waiting.")
            card = bytes(found[0]["card"])
        assert self._crypto is not None
        await self._control(
            "lobby.admit", member_id=member_id, admission=self._sign_admission(card)
        )

    def _sign_admission(self, card: bytes) -> bytes:
        assert self._crypto is not None
        epoch = self._crypto.epoch
        message = credentials.admission_message(unb64id(self.room_id), epoch, card)
        return u32(epoch) + self._crypto._identity.sign(message)

    async def admit_all(self) -> int:
        waiting = [w for w in await self.lobby_waiting() if w["status"] == "waiting"]
        for w in waiting:
            await self.admit(str(w["member_id"]), bytes(w["card"]))
        return len(waiting)

    async def decline(self, member_id: str) -> None:
        await self._control("lobby.decline", member_id=member_id)

    async def report(self, message: Message, reason: str) -> dict[str, Any]:
        """Report a received message; the server verifies it really was sent before routing."""
        ev = message.evidence
        if ev is None:
            raise ChatError("no_evidence", "Only received messages can be reported.")
        return await self._control(
            "report.send",
            env=ev.env,
            ts=ev.ts,
            stamp=ev.stamp,
            franking_key=ev.franking_key,
            body=ev.body,
            reason=reason,
        )

    async def review(self, digest: bytes, *, hide: bool) -> None:
        await self._control("report.review", digest=digest, hide=hide)

    async def ask(self, text: str, *, consent: bool = False) -> int:
        """Q&A: seal a question to each host (nobody else can open it); returns how many."""
        body = e2ee.encode_text(text, consent=consent)
        hosts = [
            (mid, m)
            for mid, m in self.members.items()
            if m.role == "host" and mid != self.member_id
        ]
        for host_id, info in hosts:
            x_public = e2ee.parse_card(info.card).x_public
            assert self._crypto is not None
            plain = sign_question(
                self._crypto._identity, unb64id(self.room_id), unb64id(host_id), body
            )
            sealed = hpke_seal(
                x_public, question_info(self.room_id, self.member_id, host_id), plain
            )
            await self._control("qa.ask", to=host_id, sealed=sealed)
        return len(hosts)

    async def answer(self, question: Question, text: str) -> Sent:
        """Answer publicly, quoting the question (named only if the asker agreed)."""
        quote: dict[str, Any] = {"text": question.text}
        if question.consent:
            quote["asker"] = question.pseudonym
        return await self.send(text, quote=quote)
