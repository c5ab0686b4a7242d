"""Safety code: one number per room epoch that all honest members see identically.

It hashes every admitted card, so a server that slips in a ghost member or
swaps a key changes everyone's code. A static code must resist a server that
grinds fake keys, hence >= 100 bits (40 digits, ~133 bits) and 5,200 SHA-512
iterations (as in Signal's safety numbers) to make each guess cost more.
"""

from __future__ import annotations

from collections.abc import Iterable

from .constants import SAFETY_DIGITS, SAFETY_GROUP, SAFETY_ITERATIONS, U32_MAX, ds
from .errors import E2EEError
from .identity import parse_card
from .primitives import sha512, u32


def safety_transcript(room_id: bytes, epoch: int, cards: Iterable[bytes]) -> bytes:
    """DS("safety") || room_id || u32 epoch || u32 n || cards sorted bytewise (deduplicated)."""
    if not 0 <= epoch <= U32_MAX:
        raise E2EEError("malformed", "epoch is u32")
    unique = sorted({parse_card(c, room_id).raw for c in cards})
    return ds("safety") + room_id + u32(epoch) + u32(len(unique)) + b"".join(unique)


def safety_code(room_id: bytes, epoch: int, cards: Iterable[bytes]) -> str:
    """40 digits in groups of 5; order of ``cards`` does not matter."""
    d = sha512(safety_transcript(room_id, epoch, cards))
    h = d
    for _ in range(SAFETY_ITERATIONS):
        h = sha512(h + d)
    groups = SAFETY_DIGITS // SAFETY_GROUP
    return " ".join(
        f"{int.from_bytes(h[5 * i : 5 * i + 5], 'big') % 10**SAFETY_GROUP:0{SAFETY_GROUP}d}"
        for i in range(groups)
    )
