"""The single exception type of the E2EE layer and its catalogue of codes.

Callers (the gateway, the client, the UI) branch on ``code``, never on the
message text, so codes are stable, lower_snake and documented in docs/e2ee.md.
Messages never contain key material or plaintext.
"""

from __future__ import annotations

from typing import Final

ERROR_CODES: Final[dict[str, str]] = {
    "malformed": "input does not follow the binary or JSON layout",
    "unknown_version": "format version byte is not 0x01",
    "unknown_suite": "cipher suite byte is not 0x01",
    "bad_length": "total or declared length is wrong, or a body is too large",
    "bad_signature": "Ed25519 signature does not verify under the claimed sender's key",
    "bad_card": "key card is inconsistent: member_id, self-signature or a weak key",
    "wrong_room": "object is bound to another room",
    "wrong_sender": "sender is not the expected member, or not a member at all",
    "wrong_recipient": "sender-key distribution is addressed to someone else",
    "own_message": "envelope was sent by this identity; keep your own plaintext",
    "old_epoch": "epoch is older than the current one",
    "future_epoch": "epoch is newer than the current one",
    "unknown_chain": "no chain key is known for this sender and key_id",
    "replay": "index already used (or its skipped key expired or was evicted)",
    "too_far_ahead": "index is more than MAX_SKIP ahead of the chain",
    "key_commitment": "key_commit does not match the derived message key",
    "aead": "AEAD or HPKE authentication failed",
    "padding": "padding is not 0x80 followed by zeros, or bucket is wrong",
    "franking": "franking commitment does not match (body, franking key)",
    "equivocation": "sender distributed two different chain keys for one key_id",
    "skd_mismatch": "sealed SKD fields differ from the signed outer header",
    "bad_proof": "join proof does not verify",
    "bad_stamp": "server stamp does not verify",
}


class E2EEError(Exception):
    """Raised for every rejected input; ``code`` is one of :data:`ERROR_CODES`."""

    code: str

    def __init__(self, code: str, detail: str = "") -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"uncatalogued E2EE error code {code!r}")
        self.code = code
        super().__init__(f"{code}: {detail}" if detail else code)
