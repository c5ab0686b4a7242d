"""End-to-end encryption for chatserver rooms (envelope format v1, suite 0x01).

The server only relays ciphertext; this package is the reference
implementation shared by the server's key-free checks (``parse_envelope``,
``verify_envelope``, ``verify_skd``, ``verify_join_proof``, ``server_stamp``,
``verify_report``) and the Python client (``RoomCrypto``). The spec is
docs/e2ee.md; the browser implementation checks tests/vectors/project.json.
"""

from .constants import (
    BUCKETS,
    HEADER_LEN,
    ID_LEN,
    MAX_BODY_LEN,
    MAX_ENVELOPE_LEN,
    SIG_LEN,
    SUITE,
    VERSION,
)
from .envelope import EnvelopeHeader, parse_envelope, verify_envelope
from .errors import ERROR_CODES, E2EEError
from .franking import server_stamp, verify_report
from .identity import Identity, KeyCard, parse_card
from .room_secret import (
    RoomSecret,
    derive_room_secret,
    new_room_secret,
    open_meta,
    seal_meta,
    verify_join_proof,
    verify_member_link_proof,
)
from .safety import safety_code
from .session import Opened, RoomCrypto, decode_text, encode_text
from .skd import SkdHeader, parse_skd, verify_skd

__all__ = [
    "BUCKETS",
    "ERROR_CODES",
    "HEADER_LEN",
    "ID_LEN",
    "MAX_BODY_LEN",
    "MAX_ENVELOPE_LEN",
    "SIG_LEN",
    "SUITE",
    "VERSION",
    "E2EEError",
    "EnvelopeHeader",
    "Identity",
    "KeyCard",
    "Opened",
    "RoomCrypto",
    "RoomSecret",
    "SkdHeader",
    "decode_text",
    "derive_room_secret",
    "encode_text",
    "new_room_secret",
    "open_meta",
    "parse_card",
    "parse_envelope",
    "parse_skd",
    "safety_code",
    "seal_meta",
    "server_stamp",
    "verify_envelope",
    "verify_join_proof",
    "verify_member_link_proof",
    "verify_report",
    "verify_skd",
]
