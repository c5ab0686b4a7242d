"""Message franking: abuse reports that the server can verify without plaintext.

The sender commits to the franked body with a fresh key k_f (fc in the
header). On delivery the server MACs the envelope with its own key and the
delivery time (the stamp). A reporter reveals (franked body, k_f, envelope,
ts, stamp); the server recomputes both and checks the sender's signature
again: the stamp proves the envelope was delivered by this server at that
time, the signature who sent it (a stamp alone is only the server's word);
fc proves this body is what the envelope carried (AEAD + key commitment made
fc binding for all receivers).
"""

from __future__ import annotations

from .constants import KEY_LEN, U64_MAX, ds
from .envelope import EnvelopeHeader, parse_envelope, verify_envelope
from .errors import E2EEError
from .identity import KeyCard
from .payload import franking_commitment
from .primitives import ct_eq, hmac_sha256, sha256, u64

MIN_SERVER_KEY_LEN = 32


def _stamp_input(h: EnvelopeHeader, envelope: bytes, server_ts_ms: int) -> bytes:
    return (ds("stamp") + h.room_id + h.sender_id + u64(server_ts_ms) + h.franking_commit) + sha256(
        envelope
    )


def server_stamp(server_key: bytes, envelope: bytes, server_ts_ms: int) -> bytes:
    """HMAC(K_srv, DS("stamp") || room || sender || u64 ts || fc || SHA-256(envelope))."""
    if len(server_key) < MIN_SERVER_KEY_LEN:
        raise E2EEError("bad_length", "server key must be at least 32 bytes")
    if not 0 <= server_ts_ms <= U64_MAX:
        raise E2EEError("malformed", "server_ts_ms is u64")
    h = parse_envelope(envelope)
    return hmac_sha256(server_key, _stamp_input(h, envelope, server_ts_ms))


def verify_report(
    server_key: bytes,
    envelope: bytes,
    server_ts_ms: int,
    stamp: bytes,
    franking_key: bytes,
    body: bytes,
    sender_card: KeyCard,
) -> EnvelopeHeader:
    """Check a report. ``body`` is the *franked* body: ``u8 type || u64 client_ts || body``

    (``Opened.report_body``). The envelope's signature is checked again with the accused's card:
    the stamp alone only says this server delivered it, and whoever holds the server key could
    stamp an envelope nobody signed. Raises ``wrong_sender``, ``wrong_room``, ``bad_signature``,
    ``bad_stamp`` or ``franking``.
    """
    h = verify_envelope(envelope, sender_card)
    expected = server_stamp(server_key, envelope, server_ts_ms)
    if not ct_eq(expected, stamp):
        raise E2EEError("bad_stamp", "stamp does not verify")
    if len(franking_key) != KEY_LEN:
        raise E2EEError("franking", "franking key must be 32 bytes")
    if not ct_eq(franking_commitment(franking_key, h.ctx, body), h.franking_commit):
        raise E2EEError("franking", "body or key does not match the commitment")
    return h
