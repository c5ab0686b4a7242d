"""The Python client against the shared replica fixtures (tests/vectors/replica.json).

Each fixture is a room as the viewer joins it, the pushes the server sends next and what the
room must show (docs/e2ee.md, "Client replica fixtures"); web/test/replica_fixtures.test.mjs
drives the browser client through the same file, so both clients give one verdict per push.

The room is a real `Room`, entered through `Waiting.enter` with the fixture's identity and card,
on a `ChatClient` that never opens a socket (its `call` answers the join from the fixture and
every key.send with ok). Pushes go in through `ChatClient._push_handler`, as Socket.IO delivers
them. Time is the event loop's clock, which only the fixture's `advance_ms` steps move.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chatserver.client import (
    ChatClient,
    DecryptFailed,
    KeyRejected,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    Message,
    Room,
    RoomEnded,
    RoomEvent,
    Waiting,
)
from chatserver.e2ee import Identity, derive_room_secret
from chatserver.e2ee.constants import SKD_HEADER_LEN, SKD_LEN
from chatserver.links import RoomLink
from chatserver.protocol.ids import unb64id

ROOT = Path(__file__).resolve().parents[2]
PATH = ROOT / "tests" / "vectors" / "replica.json"
SERVER = "http://replica.invalid"


def _bin(obj: dict[str, Any]) -> Any:
    return bytes.fromhex(obj["$bin"]) if obj.keys() == {"$bin"} else obj


DOC: dict[str, Any] = json.loads(PATH.read_text(), object_hook=_bin)


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_replica_fixtures", ROOT / "scripts" / "gen_replica_fixtures.py"
    )
    assert spec
    assert spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


class _Loop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when the fixture says so (its timers follow)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def time(self) -> float:
        return self.now


class _OfflineClient(ChatClient):
    """A ChatClient without a socket: the join ack is the fixture's, every other call is ok."""

    def __init__(self, join_ack: dict[str, Any], key_wait: float) -> None:
        super().__init__(SERVER, key_wait=key_wait)
        self.join_ack = join_ack
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def seat_proofs(self, link: RoomLink, identity: Identity) -> dict[str, bytes]:
        return {}

    async def call(self, event: str, data: dict[str, Any], wait: float | None = None) -> Any:
        self.sent.append((event, data))
        return self.join_ack if event == "room.join" else {"ok": True}


def _shown(ev: RoomEvent, step: int) -> dict[str, Any] | None:
    """An event as the fixtures write what a room shows (None: not part of the comparison)."""
    if isinstance(ev, Message):
        return {"kind": "message", "seq": ev.seq, "sender": ev.sender_id, "text": ev.text}
    if isinstance(ev, DecryptFailed):
        return {"kind": "undecryptable", "seq": ev.seq, "code": ev.code}
    if isinstance(ev, MemberJoined):
        return {"kind": "joined", "seq": ev.seq, "member": ev.member_id, "role": ev.role}
    if isinstance(ev, MemberLeft):
        return {"kind": "left", "seq": ev.seq, "member": ev.member_id, "reason": ev.reason}
    if isinstance(ev, MemberUpdated) and ev.pseudonym != ev.old_pseudonym:
        return {"kind": "renamed", "seq": ev.seq, "member": ev.member_id, "pseudonym": ev.pseudonym}
    if isinstance(ev, KeyRejected) and ev.code == "equivocation":
        return {"kind": "flagged", "pseudonym": ev.pseudonym}
    if isinstance(ev, RoomEnded):
        return {"kind": "ended", "reason": ev.reason}
    # Typing, and KeyRejected for codes other than equivocation (the browser client shows no
    # such notice), are not compared.
    return None


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _replay(fx: dict[str, Any], loop: _Loop) -> dict[str, Any]:
    viewer, room_fx = fx["viewer"], fx["room"]
    secret = room_fx["secret"]
    link = RoomLink(
        SERVER,
        room_fx["room_id"],
        derive_room_secret(bytes.fromhex(secret)) if secret is not None else None,
    )
    identity = Identity.from_seeds(
        bytes.fromhex(viewer["ed_seed"]), bytes.fromhex(viewer["x_seed"])
    )
    card = identity.card(unb64id(link.room_id), viewer["card_ms"])
    client = _OfflineClient(room_fx["join"], DOC["key_wait_ms"] / 1000)
    view: list[dict[str, Any]] = []
    room: Room | None = None
    try:
        room = await Waiting(client, link, identity, viewer["nickname"], card).enter()
        _collect(room, -1, view)
        for step, entry in enumerate(fx["steps"]):
            if "advance_ms" in entry:
                loop.now += entry["advance_ms"] / 1000
            else:
                client._push_handler(entry["push"])(entry["data"])
            await _settle()
            _collect(room, step, view)
        return {
            "view": view,
            "verdicts": dict(sorted((k, v) for k, v in room.refused.items() if v)),
            "final": {
                "seq": room.seq,
                "epoch": room.epoch,
                "members": sorted(room.members),
                "flagged": sorted(room.flagged),
            },
        }
    finally:
        if room is not None:
            room._close()  # its timers
        for task in list(client._tasks):
            task.cancel()
        await _settle()


def _collect(room: Room, step: int, view: list[dict[str, Any]]) -> None:
    while not room._queue.empty():
        ev = room._queue.get_nowait()
        if isinstance(ev, RoomEvent):
            shown = _shown(ev, step)
            if shown is not None:
                view.append({**shown, "step": step})


def _params() -> list[Any]:
    out = []
    for fx in DOC["scenarios"]:
        why = fx.get("xfail", {}).get("python")
        marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
        out.append(pytest.param(fx, id=fx["name"], marks=marks))
    return out


@pytest.mark.parametrize("fx", _params())
def test_room_shows_what_the_fixture_says(fx: dict[str, Any]) -> None:
    loop = _Loop()
    try:
        got = loop.run_until_complete(_replay(fx, loop))
    finally:
        loop.close()
    assert got == fx["expect"], fx["title"]


def test_file_is_what_the_script_generates() -> None:
    gen = _load_script()
    text = PATH.read_text()
    assert gen.render(gen.build(json.loads(text))) == text


def _without_hpke(doc: Any) -> Any:
    """The document with every SKD cut before its HPKE blob (the blob and the signature over it
    are all that a fresh run may change)."""
    if isinstance(doc, dict):
        if doc.keys() == {"$bin"} and len(doc["$bin"]) == 2 * SKD_LEN:
            return {"$bin": doc["$bin"][: 2 * SKD_HEADER_LEN]}
        return {k: _without_hpke(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_without_hpke(v) for v in doc]
    return doc


def test_a_fresh_run_differs_only_in_the_hpke_blobs() -> None:
    gen = _load_script()
    fresh = json.loads(gen.render(gen.build(None)))
    assert _without_hpke(fresh) == _without_hpke(json.loads(PATH.read_text()))


def test_every_fixture_is_well_formed() -> None:
    names = [fx["name"] for fx in DOC["scenarios"]]
    assert len(names) == len(set(names))
    for fx in DOC["scenarios"]:
        assert set(fx.get("xfail", {})) <= {"python", "web"}, fx["name"]
        for shown in fx["expect"]["view"]:
            assert -1 <= shown["step"] < len(fx["steps"]), fx["name"]
        assert set(fx["expect"]["verdicts"]) <= set(DOC["verdicts"]), fx["name"]
