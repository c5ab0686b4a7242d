"""Role statements: a host's signature over a role change, so clients do not take roles from the
server's word.

    role_proof = signer_id(16) || u64 issued_ms || Ed25519(signer's card key, DS("role")
                 || room_id || member_id || u8 role || u64 issued_ms || signer_id)

`role` is 0 member, 1 moderator, 2 host (co-host). A client counts a member as moderator or
co-host only when the member's view carries a statement for exactly that role, signed by a
member the client already counts as a host: the room's owner (the charter's host in a private
room) or a co-host proven the same way. A demotion needs no proof (it never gives power). The
server checks the statement at `member.role` (`bad_role_proof`) and keeps it in the member view;
it can still withhold a later demotion, never invent a promotion.
"""

from __future__ import annotations

from .constants import ID_LEN, SIG_LEN, ds
from .errors import E2EEError
from .identity import Identity
from .primitives import ed25519_verify

ROLE_CODES = {"member": 0, "moderator": 1, "host": 2}
ROLE_PROOF_LEN = ID_LEN + 8 + SIG_LEN  # 88


def role_message(
    room_id: bytes, member_id: bytes, role: str, issued_ms: int, signer_id: bytes
) -> bytes:
    return (
        ds("role")
        + room_id
        + member_id
        + bytes([ROLE_CODES[role]])
        + issued_ms.to_bytes(8, "big")
        + signer_id
    )


def sign_role(
    signer: Identity, room_id: bytes, member_id: bytes, role: str, issued_ms: int
) -> bytes:
    if role not in ROLE_CODES or len(room_id) != ID_LEN or len(member_id) != ID_LEN:
        raise E2EEError("malformed", "role statement inputs")
    if not 0 <= issued_ms < 2**53:
        raise E2EEError("malformed", "issued_ms below 2^53")
    signed = role_message(room_id, member_id, role, issued_ms, signer.member_id)
    return signer.member_id + issued_ms.to_bytes(8, "big") + signer.sign(signed)


def role_signer(proof: object) -> bytes | None:
    """The member id that claims to have signed a statement (check it with `verify_role`)."""
    if not isinstance(proof, bytes) or len(proof) != ROLE_PROOF_LEN:
        return None
    return proof[:ID_LEN]


def verify_role(
    signer_ed_public: bytes, room_id: bytes, member_id: bytes, role: str, proof: object
) -> bool:
    """Does `proof` state `role` for `member_id`, signed by its signer's key? Never raises."""
    if role not in ROLE_CODES or not isinstance(proof, bytes) or len(proof) != ROLE_PROOF_LEN:
        return False
    if len(room_id) != ID_LEN or len(member_id) != ID_LEN:
        return False
    signer_id, issued, sig = proof[:ID_LEN], proof[ID_LEN : ID_LEN + 8], proof[ID_LEN + 8 :]
    issued_ms = int.from_bytes(issued, "big")
    if issued_ms >= 2**53:
        return False
    signed = role_message(room_id, member_id, role, issued_ms, signer_id)
    return ed25519_verify(signer_ed_public, sig, signed)
