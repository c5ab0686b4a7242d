"""Generate tests/vectors/project.json: the project's own E2EE test vectors.

Everything is derived from fixed seeds, so the file is reproducible except
the HPKE output of the SKD (HPKE draws a fresh ephemeral key and
``cryptography`` cannot fix it): that part is recorded, listed under
``nondeterministic``, and checked by opening it with the recipient's key.

Usage: python scripts/gen_vectors.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatserver.e2ee import (  # noqa: E402
    Identity,
    derive_room_secret,
    parse_card,
    safety_code,
    server_stamp,
)
from chatserver.e2ee.chain import chain_step  # noqa: E402
from chatserver.e2ee.charter import make_charter  # noqa: E402
from chatserver.e2ee.constants import BUCKETS, ds  # noqa: E402
from chatserver.e2ee.envelope import derive_message_keys, make_ctx, seal_envelope  # noqa: E402
from chatserver.e2ee.padding import pad  # noqa: E402
from chatserver.e2ee.payload import Payload, encode_payload, franking_commitment  # noqa: E402
from chatserver.e2ee.question import question_message, sign_question  # noqa: E402
from chatserver.e2ee.roles import role_message, sign_role  # noqa: E402
from chatserver.e2ee.room_secret import (  # noqa: E402
    join_message,
    member_link_message,
    seal_meta,
)
from chatserver.e2ee.seat import seat_message, sign_seat  # noqa: E402
from chatserver.e2ee.skd import SkdHeader, assemble_skd, seal_skd, skd_info, skd_plaintext  # noqa: E402

OUT = ROOT / "tests" / "vectors" / "project.json"
NONDETERMINISTIC = ["skd.blob", "skd.skd"]


def _fixed(byte: int, n: int) -> bytes:
    return bytes([byte]) * n


def _identity(name: str, ed_byte: int, x_byte: int, room_id: bytes, created_ms: int) -> Any:
    ed_seed, x_seed = _fixed(ed_byte, 32), _fixed(x_byte, 32)
    ident = Identity.from_seeds(ed_seed, x_seed)
    return ident, {
        "name": name,
        "ed_seed": ed_seed.hex(),
        "x_seed": x_seed.hex(),
        "ed_public": ident.ed_public.hex(),
        "x_public": ident.x_public.hex(),
        "member_id": ident.member_id.hex(),
        "created_ms": created_ms,
        "card": ident.card(room_id, created_ms).hex(),
    }


def _envelope_vector(
    alice: Identity,
    room_id: bytes,
    epoch: int,
    key_id: int,
    index: int,
    mk: bytes,
    salt: bytes,
    payload: Payload,
) -> dict[str, Any]:
    ctx = make_ctx(room_id, alice.member_id, epoch, key_id, index)
    keys = derive_message_keys(mk, salt, ctx)
    encoded = encode_payload(payload)
    env = seal_envelope(
        alice,
        room_id=room_id,
        epoch=epoch,
        key_id=key_id,
        index=index,
        mk=mk,
        salt=salt,
        payload=payload,
    )
    return {
        "inputs": {
            "sender": "alice",
            "room_id": room_id.hex(),
            "epoch": epoch,
            "key_id": key_id,
            "index": index,
            "mk": mk.hex(),
            "salt": salt.hex(),
            "franking_key": payload.franking_key.hex(),
            "msg_type": payload.msg_type,
            "client_ts_ms": payload.client_ts_ms,
            "body": payload.body.hex(),
        },
        "ctx": ctx.hex(),
        "hkdf_info": (ds("msg") + ctx).hex(),
        "aead_key": keys.key.hex(),
        "aead_nonce": keys.nonce.hex(),
        "key_commit": keys.key_commit.hex(),
        "payload": encoded.hex(),
        "padded_len": len(pad(encoded)),
        "franked_body": payload.franked.hex(),
        "franking_commit": franking_commitment(payload.franking_key, ctx, payload.franked).hex(),
        "envelope": env.hex(),
        "envelope_len": len(env),
    }


def build(skd_blob: bytes | None = None) -> dict[str, Any]:
    """Build the vector document. ``skd_blob`` reuses a recorded HPKE output."""
    secret = bytes(range(32))
    rs = derive_room_secret(secret)
    room_id = rs.room_id
    alice, alice_v = _identity("alice", 0xA1, 0xA2, room_id, 1_700_000_000_000)
    bob, bob_v = _identity("bob", 0xB1, 0xB2, room_id, 1_700_000_000_001)

    join_nonce = _fixed(0x11, 16)
    question_json = b'{"text":"Is it normal to feel numb?","consent":false}'
    meta_nonce = _fixed(0x22, 12)
    meta_text = "Evening check-in \N{CRESCENT MOON}"

    ck0 = _fixed(0x33, 32)
    steps: list[dict[str, Any]] = []
    ck = ck0
    for i in range(3):
        mk, nxt = chain_step(ck)
        steps.append({"index": i, "ck": ck.hex(), "mk": mk.hex(), "ck_next": nxt.hex()})
        ck = nxt

    epoch, key_id, index = 3, 0x01020304, 2
    mk2 = bytes.fromhex(steps[2]["mk"])
    ck2 = bytes.fromhex(steps[2]["ck"])
    text_body = b'{"text":"hello, I hear you"}'
    short = _envelope_vector(
        alice,
        room_id,
        epoch,
        key_id,
        index,
        mk2,
        _fixed(0x44, 16),
        Payload(_fixed(0x55, 32), 1, 1_700_000_000_123, text_body),
    )
    long_body = bytes(range(256)) + bytes(44)
    second = _envelope_vector(
        alice,
        room_id,
        epoch,
        key_id,
        1,
        bytes.fromhex(steps[1]["mk"]),
        _fixed(0x46, 16),
        Payload(_fixed(0x56, 32), 2, 1_700_000_000_124, long_body),
    )

    bob_card = parse_card(bytes.fromhex(bob_v["card"]), room_id)
    plain = skd_plaintext(room_id, alice.member_id, epoch, key_id, index, ck2)
    info = skd_info(room_id, alice.member_id, bob.member_id, epoch)
    if skd_blob is None:
        skd = seal_skd(
            alice,
            bob_card,
            room_id=room_id,
            epoch=epoch,
            key_id=key_id,
            start_index=index,
            chain_key=ck2,
        )
        skd_blob = skd[60:185]
    header = SkdHeader(room_id, alice.member_id, bob.member_id, epoch, key_id)
    skd = assemble_skd(alice, header, skd_blob)

    server_key = _fixed(0x66, 32)
    server_ts = 1_700_000_000_500
    envelope = bytes.fromhex(short["envelope"])
    cards = [bytes.fromhex(bob_v["card"]), bytes.fromhex(alice_v["card"])]

    return {
        "description": (
            "chatserver E2EE v1 / suite 0x01 project vectors (see docs/e2ee.md). "
            "All byte strings are lowercase hex; integers are JSON numbers and go on "
            "the wire big-endian. Generated by scripts/gen_vectors.py."
        ),
        "version": 1,
        "suite": 1,
        "ds_example": {"label": "msg", "bytes": ds("msg").hex()},
        "nondeterministic": NONDETERMINISTIC,
        "room": {
            "secret": secret.hex(),
            "room_id": room_id.hex(),
            "join_public": rs.join_public.hex(),
            "meta_key": rs.meta_key.hex(),
            "join": {
                "nonce": join_nonce.hex(),
                "member_id": alice.member_id.hex(),
                "signed": join_message(room_id, join_nonce, alice.member_id).hex(),
                "proof": rs.sign_join(join_nonce, alice.member_id).hex(),
            },
            # The room's charter (host seat: bob; a lobby), signed with the link key.
            "charter": {
                "host_id": bob.member_id.hex(),
                "lobby": True,
                "charter": make_charter(rs, bob.member_id, lobby=True).hex(),
                "no_host": make_charter(rs, None, lobby=False).hex(),
            },
            # Alice's member link proof: what the other members check in a private room.
            "member_link": {
                "member_id": alice.member_id.hex(),
                "signed": member_link_message(room_id, alice.member_id).hex(),
                "proof": rs.sign_member(alice.member_id).hex(),
            },
            "meta": {
                "text": meta_text,
                "nonce": meta_nonce.hex(),
                "blob": seal_meta(
                    rs.meta_key, room_id, meta_text, rng=lambda n: meta_nonce[:n]
                ).hex(),
            },
        },
        # Proof of possession of a seat (docs/e2ee.md §3): alice answers a room challenge.
        "seat": {
            "nonce": join_nonce.hex(),
            "member_id": alice.member_id.hex(),
            "ed_public": alice.ed_public.hex(),
            "signed": seat_message(room_id, join_nonce, alice.member_id).hex(),
            "proof": sign_seat(alice, room_id, join_nonce).hex(),
        },
        # Host bob makes alice a co-host (docs/protocol.md, member.role).
        "role": {
            "signer": "bob",
            "member": "alice",
            "role": "host",
            "issued_ms": 1_700_000_000_500,
            "signed": role_message(
                room_id, alice.member_id, "host", 1_700_000_000_500, bob.member_id
            ).hex(),
            "proof": sign_role(bob, room_id, alice.member_id, "host", 1_700_000_000_500).hex(),
        },
        # A question alice asks host bob (docs/protocol.md, qa.ask): signed, then sealed to bob.
        "question": {
            "asker": "alice",
            "host": "bob",
            "json": question_json.decode(),
            "signed": question_message(
                room_id, alice.member_id, bob.member_id, question_json
            ).hex(),
            "plaintext": sign_question(alice, room_id, bob.member_id, question_json).hex(),
        },
        "identities": [alice_v, bob_v],
        "chain": {"ck0": ck0.hex(), "steps": steps},
        "buckets": list(BUCKETS),
        "envelopes": [short, second],
        "skd": {
            "inputs": {
                "sender": "alice",
                "recipient": "bob",
                "room_id": room_id.hex(),
                "epoch": epoch,
                "key_id": key_id,
                "start_index": index,
                "chain_key": ck2.hex(),
            },
            "plaintext": plain.hex(),
            "hpke_info": info.hex(),
            "blob": skd_blob.hex(),
            "skd": skd.hex(),
        },
        "safety_code": {
            "room_id": room_id.hex(),
            "epoch": epoch,
            "cards": [c.hex() for c in cards],
            "code": safety_code(room_id, epoch, cards),
        },
        "stamp": {
            "server_key": server_key.hex(),
            "server_ts_ms": server_ts,
            "envelope": envelope.hex(),
            "stamp": server_stamp(server_key, envelope, server_ts).hex(),
            "report": {
                "franking_key": short["inputs"]["franking_key"],
                "franked_body": short["franked_body"],
            },
        },
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    blob = None
    if OUT.exists():
        # Keep the recorded HPKE output so regenerating does not churn the file.
        blob = bytes.fromhex(json.loads(OUT.read_text())["skd"]["blob"])
    text = render(build(blob))
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale; run scripts/gen_vectors.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
