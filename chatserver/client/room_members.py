"""A room's membership: which members are admitted, and which role each one is trusted with."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from chatserver import credentials, e2ee
from chatserver.client.events import MemberInfo
from chatserver.client.room_state import RoomState
from chatserver.e2ee.roles import role_signer, verify_role
from chatserver.protocol.ids import b64id, unb64id
from chatserver.trust import card_derives

log = logging.getLogger("chatserver.client")


class RoomMembers(RoomState):
    """Mixed into `Room` (under `RoomKeys`): admitting members from their signed cards, and trusting their roles."""

    # members and output

    def _admit(self, member: dict[str, Any]) -> bool:
        member_id = str(member["member_id"])
        if member_id in self._removed:
            self._refuse("removed_member")
            return False
        card = bytes(member["card"])
        if not card_derives(card, member_id, unb64id(self.room_id)):
            # The id a view names must be the one its card derives: otherwise a server could pair
            # a real member's id (and its proofs) with a ghost's card.
            self._refuse("card_mismatch")
            return False
        if not self._admitted_by_host(member_id, card, member.get("admission")):
            # A lobby room's member without a host's admission: we share no keys with it.
            log.warning("member without a valid admission ignored")
            return False
        if not self._holds_the_link(member_id, member.get("member_proof")):
            # A private room's card that no link holder vouched for: the server added it.
            self._refuse("unproven_member")
            return False
        if member_id != self.member_id and self._crypto is not None:
            try:
                self._crypto.add_member(card)
            except e2ee.E2EEError as exc:
                log.warning("member card refused", extra={"code": exc.code})
                return False
        self.members[member_id] = self._member_info(member, card)
        return True

    def _member_info(self, view: dict[str, Any], card: bytes) -> MemberInfo:
        claimed, proof = str(view.get("role")), view.get("role_proof")
        proof = proof if isinstance(proof, bytes) else None
        member_id = str(view["member_id"])
        role = self._trusted_role(member_id, card, claimed, proof)
        return MemberInfo(str(view["pseudonym"]), role, card, claimed, proof)

    def _trusted_role(self, member_id: str, card: bytes, claimed: str, proof: bytes | None) -> str:
        """The owner (the charter's host seat in a private room) is a host; anyone else is a
        moderator or co-host only with a statement for exactly that role, signed by a member
        we already count as a host. Demotions need nothing."""
        if member_id == self.host_id and card_derives(card, member_id):
            return "host"
        if claimed not in ("moderator", "host"):
            return "member"
        signer = role_signer(proof)
        voucher = self.members.get(b64id(signer)) if signer is not None else None
        if voucher is None or voucher.role != "host" or b64id(signer or b"") == member_id:
            return "member"
        try:
            ed_public = e2ee.parse_card(voucher.card).ed_public
        except e2ee.E2EEError:
            return "member"
        if verify_role(ed_public, unb64id(self.room_id), unb64id(member_id), claimed, proof):
            return claimed
        return "member"

    def _count_unproven(self, member_id: str) -> None:
        """Count (once per view) a staff role the server claims but no trusted host signed."""
        info = self.members.get(member_id)
        if info is not None and info.claimed in ("moderator", "host") and info.role != info.claimed:
            self._refuse("unproven_role")

    def _admit_snapshot(self, views: list[dict[str, Any]]) -> None:
        """Admit a join or resume snapshot. Admissions count only from trusted hosts, and a
        co-host is trusted only once its signer is, while the list is in the server's order:
        admit and settle roles in rounds until nothing changes; what is left is refused."""
        pending = views
        while pending:
            later = []
            for view in pending:
                card = view.get("card")
                if isinstance(card, bytes) and self._admitted_by_host(
                    str(view["member_id"]), card, view.get("admission")
                ):
                    self._admit(view)
                else:
                    later.append(view)
            self._retrust_roles()
            if len(later) == len(pending):
                break
            pending = later
        for view in pending:
            self._admit(view)  # refused: no host we trust admitted them

    def _retrust_roles(self) -> None:
        """After a snapshot: co-hosts may vouch for each other in any order, so re-check the
        members whose claimed role is not yet proven until nothing changes."""
        changed = True
        while changed:
            changed = False
            for member_id, info in list(self.members.items()):
                if info.claimed in ("moderator", "host") and info.role != info.claimed:
                    role = self._trusted_role(member_id, info.card, info.claimed, info.role_proof)
                    if role != info.role:
                        self.members[member_id] = dataclasses.replace(info, role=role)
                        changed = True

    def _holds_the_link(self, member_id: str, member_proof: Any) -> bool:
        """Private rooms: the member's id is signed with the link key, which the server lacks."""
        secret = self.link.secret
        if secret is None or member_id == self.member_id:
            return True
        return e2ee.verify_member_link_proof(
            secret.join_public, secret.room_id, unb64id(member_id), member_proof
        )

    def _admitted_by_host(self, member_id: str, card: bytes, admission: Any) -> bool:
        if not self.lobby or member_id == self.host_id or member_id == self.member_id:
            return True
        if not isinstance(admission, bytes):
            return False
        hosts = [self.host_card] + [
            m.card for m in self.members.values() if m.role == "host" and m.card
        ]
        for host_card in hosts:
            if host_card is None:
                continue
            try:
                ed_public = e2ee.parse_card(host_card).ed_public
            except e2ee.E2EEError:
                continue
            if credentials.verify_admission(ed_public, admission, unb64id(self.room_id), card):
                return True
        return False

    def _apply_member(self, member: dict[str, Any], *, count: bool = True) -> bool:
        member_id = str(member["member_id"])
        known = self.members.get(member_id)
        if known is None and member_id != self.member_id:
            self._refuse("unknown_member")  # an update cannot list someone never admitted
            return False
        card = known.card if known else bytes(member.get("card") or b"")
        self.members[member_id] = self._member_info(member, card)
        if count:
            self._count_unproven(member_id)
        if member_id == self.member_id:
            self.pseudonym = str(member["pseudonym"])
            self.role = str(member["role"])
        return True

    def _name(self, member_id: str) -> str:
        info = self.members.get(member_id)
        return info.pseudonym if info else "?"

    def _role(self, member_id: str) -> str:
        info = self.members.get(member_id)
        return info.role if info else ""

    def _refuse(self, reason: str) -> None:
        """Count a push refused on its signatures; logged by reason only, never its content."""
        self.refused[reason] += 1
        log.info("push refused", extra={"reason": reason})
