"""Micro-benchmark of the E2EE envelope: seal and open cost per message, wire size.

Usage: python scripts/bench_e2ee.py [N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatserver.e2ee import Identity, RoomCrypto, new_room_secret, parse_card, verify_envelope


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    room_id = new_room_secret().room_id
    a = RoomCrypto(Identity.generate(), room_id)
    b = RoomCrypto(Identity.generate(), room_id)
    a.add_member(b.card)
    b.add_member(a.card)
    text = "x" * 20
    card = parse_card(a.card)

    envs: list[bytes] = []
    skds: list[bytes] = []
    t0 = time.perf_counter()
    for _ in range(n):
        envs.append(a.encrypt(text))
        skds.extend(s for _, s in a.pending_key_shares())
    seal = time.perf_counter() - t0

    t0 = time.perf_counter()
    for env in envs:
        verify_envelope(env, card)
    verify = time.perf_counter() - t0

    rotations = len(skds)
    t0 = time.perf_counter()
    it = iter(skds)
    for i, env in enumerate(envs):
        if i % 100 == 0:
            b.receive_key_share(next(it))
        b.decrypt(env)
    opened = time.perf_counter() - t0

    print(f"messages: {n} (chains: {rotations}, one SKD per 100 messages)")
    print(f"seal (encrypt + SKD amortised): {seal / n * 1e6:8.1f} us/message")
    print(f"server verify_envelope:         {verify / n * 1e6:8.1f} us/message")
    print(f"open (decrypt, incl. SKD):      {opened / n * 1e6:8.1f} us/message")
    print(f"wire size, 20-character text:   {len(envs[0])} bytes (SKD {len(skds[0])} bytes)")


if __name__ == "__main__":
    main()
