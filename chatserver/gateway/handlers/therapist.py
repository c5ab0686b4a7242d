"""Therapist sign-in: a credential signed by the server key, checked for expiry and revocation,
then proven by a signature over this connection's nonce (docs/moderation.md)."""

from __future__ import annotations

import secrets
from typing import Any

from chatserver import credentials
from chatserver.credentials import Credential, CredentialError
from chatserver.gateway.common import rate_limit
from chatserver.gateway.state import Connection
from chatserver.node import Node
from chatserver.protocol import (
    ErrorCode,
    ProtocolError,
    TherapistChallenge,
    TherapistSignin,
    ok,
)

_CRED_ERRORS = {
    "malformed": ErrorCode.CREDENTIAL_MALFORMED,
    "tampered": ErrorCode.CREDENTIAL_TAMPERED,
    "expired": ErrorCode.CREDENTIAL_EXPIRED,
    "revoked": ErrorCode.CREDENTIAL_REVOKED,
}


async def is_revoked(node: Node, cred_id: str) -> bool:
    if node.revocations.contains(cred_id):
        return True
    return await node.denylist.contains(credentials.REVOKED, cred_id, node.clock.now())


async def check_credential(node: Node, cert: bytes) -> Credential:
    """Verify a certificate now: signature, expiry, then the shared revocation list."""
    assert node.server_key is not None
    try:
        cred = credentials.verify_cert(node.server_key.public, cert, node.clock.now())
    except CredentialError as exc:
        raise ProtocolError(_CRED_ERRORS[exc.code], exc.message + ".") from None
    if await is_revoked(node, cred.cred_id):
        raise ProtocolError(ErrorCode.CREDENTIAL_REVOKED, "The credential was revoked.")
    return cred


async def therapist_challenge(
    node: Node, conn: Connection, p: TherapistChallenge
) -> dict[str, Any]:
    rate_limit(conn.control_bucket.take(node.clock.now()), "requests")
    conn.signin_nonce = secrets.token_bytes(32)
    return ok(nonce=conn.signin_nonce)


async def therapist_signin(node: Node, conn: Connection, p: TherapistSignin) -> dict[str, Any]:
    rate_limit(conn.control_bucket.take(node.clock.now(), cost=2), "sign-ins")
    nonce, conn.signin_nonce = conn.signin_nonce, None
    if nonce is None:
        raise ProtocolError(ErrorCode.NO_CHALLENGE, "Ask for a challenge (therapist.challenge).")
    cred = await check_credential(node, p.cert)
    if not credentials.verify_signin(cred, nonce, p.sig):
        raise ProtocolError(
            ErrorCode.CREDENTIAL_TAMPERED, "The proof of possession does not verify."
        )
    conn.therapist = cred
    return ok(therapist=_therapist_view(cred))


def _therapist_view(cred: Credential) -> dict[str, Any]:
    return {"id": cred.cred_id, "name": cred.name, "expires_at": cred.expires_at}


async def signed_in(node: Node, conn: Connection) -> Credential:
    """The connection's therapist, re-checked (it may have expired or been revoked since)."""
    if conn.therapist is None:
        raise ProtocolError(ErrorCode.NOT_SIGNED_IN, "Sign in with a therapist credential.")
    cred = await check_credential(node, conn.therapist.cert)
    conn.therapist = cred
    return cred
