"""Limits, sentinels and small helpers shared by the client's connection, lobby and rooms."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from chatserver import e2ee
from chatserver.client.errors import ChatError
from chatserver.e2ee.constants import ds
from chatserver.links import RoomLink
from chatserver.protocol import Push
from chatserver.protocol.ids import unb64id
from chatserver.trust import room_authority

U32_MAX = 2**32 - 1  # epochs are u32 on the wire and in every signature
MAX_WAITING_EVENTS = 256  # ordered events held back (out of order, or behind a missing key)
CATCHUP_RATE_WAITS = 5  # room.catchup pages asked again after `rate_limited` before giving up
MAX_STASHED_KEYS = 256  # sealed keys waiting for their sender's join or the next epoch
MAX_HELD_PER_SENDER = 64  # one sender's messages set aside until its sender key arrives
REPIN_DELAY_S = 1.0  # re-send the pin once after a burst of joins, not once per join
MAX_OWN_SENT = 1024  # own plaintexts kept until their envelope comes back in order
MAX_QUEUED_EVENTS = 10_000  # events waiting for the application to read them
CLOSE_TIMEOUT_S = 2.0  # the longest `close` waits for the library to disconnect
# Refusals that mean "not now", never "no": the request is asked again after a wait (a resume
# keeps its seat, a send its envelope). `unavailable`: the backend is briefly unreachable.
RETRY_LATER = frozenset({"unavailable", "rate_limited"})


class _Closed:
    """Sentinel that ends a room's event stream."""


_CLOSED = _Closed()


def _parses(env: Any) -> bool:
    """Whether `env` is an envelope at all (its header parses)."""
    if not isinstance(env, bytes):
        return False
    try:
        e2ee.parse_envelope(env)
    except e2ee.E2EEError:
        return False
    return True


async def _within(step: Awaitable[Any], seconds: float) -> bool:
    """Run `step` for at most `seconds`; False if it had not finished (it is then cancelled).
    `asyncio.wait`, not `wait_for`: it never waits on a step that swallows its cancellation."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        return False
    with contextlib.suppress(Exception):
        task.result()
    return True


@dataclass(slots=True)
class _Own:
    text: str
    body: dict[str, Any]
    seq: int | None = None
    ts: int = 0


_STAFF_PUSHES = {Push.LOBBY_WAITING, Push.REPORT, Push.QA_QUESTION}


def rules_text(link: RoomLink, rules: bytes) -> str | None:
    """The ground rules as text: opened with the link's meta key in private rooms, UTF-8 in
    listed ones; None when they cannot be read."""
    try:
        if link.secret is not None:
            return e2ee.open_meta(link.secret.meta_key, link.secret.room_id, rules)
        return rules.decode("utf-8")
    except (e2ee.E2EEError, UnicodeDecodeError):
        return None


def authority(link: RoomLink, view: dict[str, Any]) -> tuple[str | None, bool]:
    """`trust.room_authority`, refused as ChatError `bad_charter` (a private room whose host and
    lobby no link holder signed)."""
    try:
        return room_authority(link, view)
    except e2ee.E2EEError:
        raise ChatError("bad_charter", "This room's host could not be verified.") from None


def question_info(room_id: str, asker_id: str, host_id: str) -> bytes:
    """HPKE info for a Q&A question: DS("question") ‖ room_id ‖ asker_id ‖ host_id."""
    return ds("question") + unb64id(room_id) + unb64id(asker_id) + unb64id(host_id)


def _digest(env: bytes) -> bytes:
    return hashlib.sha256(env).digest()


def _body(opened: e2ee.Opened) -> dict[str, Any]:
    if opened.text is None:
        return {}
    obj = json.loads(opened.body.decode("utf-8"))
    return obj if isinstance(obj, dict) else {}
