// RoomCrypto.exportState / restoreState (docs/e2ee.md §19): what a tab keeps to read on after a
// reload. A restored receiver reads on (skipped keys and the forward-secrecy rules included), never
// gets its own sending chain back (a fresh key id is shared instead), and refuses a state that
// does not fit.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as e from "../test-build/e2ee.mjs";

const ROOM = new Uint8Array(16).fill(9);
const T0 = 1_700_000_000_000;
const clock = () => T0; // the same card before and after (the page restores the card time)

/** A JSON round trip as the page's storage does it (byte arrays tagged, seats.ts). */
function viaStorage(state) {
  const text = JSON.stringify(state, (_k, v) => (v instanceof Uint8Array ? { $b: Buffer.from(v).toString("base64") } : v));
  return JSON.parse(text, (_k, v) => (v && typeof v === "object" && typeof v.$b === "string" ? new Uint8Array(Buffer.from(v.$b, "base64")) : v));
}

async function pair() {
  const alice = e.Identity.generate();
  const bob = e.Identity.generate();
  const a = new e.RoomCrypto(alice, ROOM, { epoch: 3, nowMs: clock });
  const b = new e.RoomCrypto(bob, ROOM, { epoch: 3, nowMs: clock });
  a.addMember(b.card);
  b.addMember(a.card);
  return { alice, bob, a, b };
}

async function share(from, to) {
  for (const [, skd] of await from.pendingKeyShares()) await to.receiveKeyShare(skd);
}

test("a restored receiver reads on where it was, skipped keys included", async () => {
  const { bob, a, b } = await pair();
  await share(a, b);
  const m0 = a.encrypt("zero");
  const m1 = a.encrypt("one");
  const m2 = a.encrypt("two");
  assert.equal(b.decrypt(m0).text, "zero");
  assert.equal(b.decrypt(m2).text, "two"); // m1 skipped: its key is kept
  const state = viaStorage(b.exportState());
  const b2 = new e.RoomCrypto(bob, ROOM, { nowMs: clock });
  b2.restoreState(state);
  assert.equal(b2.epoch, 3);
  assert.equal(b2.safetyCode(), b.safetyCode());
  assert.equal(b2.decrypt(m1).text, "one");
  assert.equal(b2.decrypt(a.encrypt("three")).text, "three");
  // Forward secrecy survives the round trip: what was read cannot be read again.
  assert.throws(() => b2.decrypt(m0), (err) => err instanceof e.E2EEError && err.code === "replay");
  assert.throws(() => b2.decrypt(m2), (err) => err instanceof e.E2EEError && err.code === "replay");
});

test("the sending chain is never restored: the first send after a reload uses a new key id", async () => {
  const { alice, a, b } = await pair();
  await share(a, b);
  const before = e.parseEnvelope(a.encrypt("before")).keyId;
  const a2 = new e.RoomCrypto(alice, ROOM, { nowMs: clock });
  a2.restoreState(viaStorage(a.exportState()));
  const shares = await a2.pendingKeyShares();
  assert.equal(shares.length, 1, "the new chain goes to every member again");
  await b.receiveKeyShare(shares[0][1]);
  const env = a2.encrypt("after");
  assert.notEqual(e.parseEnvelope(env).keyId, before);
  assert.equal(b.decrypt(env).text, "after");
  assert.ok(!JSON.stringify(viaStorage(a.exportState())).includes("shareCk"));
});

test("a state that does not fit is refused", async () => {
  const { bob, a, b } = await pair();
  await share(a, b);
  const good = viaStorage(b.exportState());
  const bad = [
    { ...good, v: 2 },
    { ...good, epoch: -1 },
    { ...good, epoch: 2 ** 32 },
    { ...good, chains: [{ ...good.chains[0], ck: new Uint8Array(5) }] },
    { ...good, chains: [{ ...good.chains[0], epoch: 1 }] },
    { ...good, members: [new Uint8Array(3)] },
  ];
  for (const state of bad) {
    const fresh = new e.RoomCrypto(bob, ROOM);
    assert.throws(() => fresh.restoreState(state), (err) => err instanceof e.E2EEError, JSON.stringify(Object.keys(state)));
  }
});
