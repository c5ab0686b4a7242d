"""Questions to a session's host (`qa.ask`), signed by the asker's card key, then sealed.

HPKE base mode authenticates nobody, and the push's `from` is the server's word, so a question
carries the asker's own signature inside the sealed blob:

    plaintext = json || Ed25519(asker, DS("question") || room_id || asker_id || host_id || json)

The host opens the blob, then checks the signature against the card of the member the push names;
a question relabelled by the server, or sealed by anyone but that member, is refused. `json` is a
type-1 style object (`text`, `consent`) under the same strict body profile as messages.
"""

from __future__ import annotations

from .constants import ID_LEN, SIG_LEN, ds
from .errors import E2EEError
from .identity import Identity
from .primitives import ed25519_verify

MAX_QUESTION_JSON = 4096


def question_message(room_id: bytes, asker_id: bytes, host_id: bytes, body: bytes) -> bytes:
    """The bytes an asker signs."""
    return ds("question") + room_id + asker_id + host_id + body


def sign_question(asker: Identity, room_id: bytes, host_id: bytes, body: bytes) -> bytes:
    """The plaintext to seal to the host: the JSON body followed by the asker's signature."""
    if len(room_id) != ID_LEN or len(host_id) != ID_LEN or not body:
        raise E2EEError("bad_length", "ids are 16 bytes and the body is not empty")
    if len(body) > MAX_QUESTION_JSON:
        raise E2EEError("bad_length", "question too long")
    return body + asker.sign(question_message(room_id, asker.member_id, host_id, body))


def open_question(
    plaintext: bytes, room_id: bytes, asker_id: bytes, asker_ed_public: bytes, host_id: bytes
) -> bytes:
    """The JSON body of a question whose signature verifies under the asker's card key."""
    if not SIG_LEN < len(plaintext) <= MAX_QUESTION_JSON + SIG_LEN:
        raise E2EEError("bad_length", "question plaintext size")
    body, sig = plaintext[:-SIG_LEN], plaintext[-SIG_LEN:]
    if not ed25519_verify(asker_ed_public, sig, question_message(room_id, asker_id, host_id, body)):
        raise E2EEError("bad_signature", "the question is not signed by the member it names")
    return body
