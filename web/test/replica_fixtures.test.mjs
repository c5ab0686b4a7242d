// The browser client against the shared replica fixtures (tests/vectors/replica.json): for each
// fixture, a RoomSession joins the room with the fixture's identity and card (as an admitted
// waiter does) through a stand-in connection like client_trust.test.mjs's FakeConn, the fixture's
// pushes are handed to it as Connection's socket handler hands them over, and what the room shows
// (listener calls), its refusal counters and its final state must be what the fixture says. The
// Python client runs the same file (tests/e2ee/test_replica_fixtures.py), so both clients give one
// verdict per push. Time is node's mock clock (Date and setTimeout), moved only by `advance_ms`.
// A fixture with `xfail.web` names a known disagreement in src/client.ts: its test checks that the
// client still disagrees, and fails once it agrees (then drop the flag).
import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { isDeepStrictEqual } from "node:util";
import { bundle, replicaFixtures } from "../test-support/bundle.mjs";
import { fakeConnClass } from "../test-support/fake_conn.mjs";

globalThis.window ??= globalThis; // client.ts schedules with window.setTimeout
const c = await bundle("replica_fixtures", ["client.ts", "e2ee/index.ts", "wire.ts"], {
  dir: ".",
  external: ["socket.io-client", "socket.io-msgpack-parser"],
});
const FakeConn = fakeConnClass(c);
const DOC = await replicaFixtures();
console.warn = () => {}; // every refusal is logged (without content); the counters are checked

/** The fixtures' verdict names, and the RoomSession counter each one reads. */
const COUNTERS = {
  relabelled: "forged",
  stale_leave: "staleLeft",
  malformed: "malformed",
  removed_member: "returned",
  unproven_member: "unproven",
  unproven_role: "unprovenRoles",
  card_mismatch: "cardMismatch",
  unknown_member: "unknownMember",
};

const tick = () => new Promise((resolve) => setImmediate(resolve));
const SETTLE_MS = 20_000;

async function replay(fx) {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now: DOC.clock_ms });
  try {
    const conn = new FakeConn({
      // A fixed nonce: the fixture's envelopes and proofs must not depend on it.
      "room.challenge": () => ({ ok: true, nonce: new Uint8Array(32).fill(7) }),
      "room.join": () => fx.room.join,
    });
    conn.origin = "https://replica.invalid";
    const secret = fx.room.secret === null ? null : c.deriveRoomSecret(c.unhex(fx.room.secret));
    const link = { roomId: fx.room.room_id, secret, hostSeed: null };
    const seeds = { ed: c.unhex(fx.viewer.ed_seed), x: c.unhex(fx.viewer.x_seed) };
    const identity = c.Identity.fromSeeds(seeds.ed, seeds.x);
    const admitted = new c.Waiting(link, identity, seeds, fx.viewer.card_ms, fx.viewer.nickname);
    const view = [];
    let step = -1;
    let barriers = 0;
    const seen = new Set();
    const shows = (entry) => view.push({ ...entry, step });
    const listener = {
      message: (m) => shows({ kind: "message", seq: m.seq, sender: m.senderId, text: m.text }),
      undecryptable: (m) => shows({ kind: "undecryptable", seq: m.seq, code: m.code }),
      joined: (m) => shows({ kind: "joined", seq: m.seq, member: m.memberId, role: m.role }),
      left: (m) => shows({ kind: "left", seq: m.seq, member: m.memberId, reason: m.reason }),
      renamed: (m) => shows({ kind: "renamed", seq: m.seq, member: m.memberId, pseudonym: m.pseudonym }),
      flagged: (pseudonym) => shows({ kind: "flagged", pseudonym }),
      ended: (reason) => shows({ kind: "ended", reason }),
      typing: (id) => seen.add(id), // the barrier below
      own() {},
      members() {},
      reconnected() {},
    };
    const room = await c.Connection.prototype.join.call(conn, link, fx.viewer.nickname, listener, admitted);
    /** Every push so far applied: a typing push queued behind them has come out (or the room
     * closed). Key shares open through WebCrypto, off the mock clock: the bound is real time. */
    const settled = async () => {
      const id = `barrier-${++barriers}`;
      conn.deliver("typing", { room_id: link.roomId, member_id: id, on: true });
      const deadline = performance.now() + SETTLE_MS;
      while (!seen.has(id) && !room.closed) {
        if (performance.now() > deadline) throw new Error(`step ${step} not applied within ${SETTLE_MS} ms`);
        await tick();
      }
      for (let i = 0; i < 5; i++) await tick(); // the send loop's key.send calls
    };
    try {
      await settled();
      for (const [i, entry] of fx.steps.entries()) {
        step = i;
        if ("advance_ms" in entry) mock.timers.tick(entry.advance_ms);
        else conn.deliver(entry.push, entry.data);
        await settled();
      }
    } finally {
      // No timer of this room may outlive its test (the next test's mock clock reuses timer ids).
      await room.leave();
    }
    const verdicts = Object.entries(COUNTERS)
      .map(([name, counter]) => [name, room[counter]])
      .filter(([, n]) => n)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return {
      view,
      verdicts: Object.fromEntries(verdicts),
      final: {
        seq: room.seq,
        epoch: room.epoch,
        members: [...room.members.keys()].sort(),
        flagged: [...room.crypto.flagged].map((h) => c.b64id(c.unhex(h))).sort(),
      },
    };
  } finally {
    mock.timers.reset();
  }
}

test("the fixtures assume the browser client's key wait", () => {
  assert.equal(DOC.key_wait_ms, 5000); // KEY_WAIT_MS in src/client.ts
  assert.ok(DOC.scenarios.length >= 10);
});

for (const fx of DOC.scenarios) {
  const why = fx.xfail?.web;
  test(`${why ? "[xfail web] " : ""}${fx.name}: ${fx.title}`, async () => {
    const got = await replay(fx);
    if (why) {
      assert.ok(!isDeepStrictEqual(got, fx.expect), `the browser client now agrees with ${fx.name}: drop its xfail.web (${why})`);
      return;
    }
    assert.deepEqual(got, fx.expect);
  });
}
