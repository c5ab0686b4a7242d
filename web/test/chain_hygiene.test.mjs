// Receiver chain hygiene (mirrors tests/e2ee/test_chain_hygiene.py): forward secrecy of what a
// receiver keeps, re-share checks without a start key, tombstones against chain reinstallation.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as e from "../test-build/e2ee.mjs";

const ROOM = new Uint8Array(16).fill(7);
const T0 = 1_700_000_000_000;
const hex = e.hex;

async function rejects(promise, code) {
  await assert.rejects(promise, (err) => err instanceof e.E2EEError && err.code === code);
}
const throwsCode = (fn, code) => assert.throws(fn, (err) => err instanceof e.E2EEError && err.code === code);

class ManualSender {
  constructor(keyId = 7, epoch = 1) {
    this.identity = e.Identity.generate();
    this.card = this.identity.card(ROOM, T0);
    this.keyId = keyId;
    this.epoch = epoch;
    this.ck0 = Uint8Array.from({ length: 32 }, (_, i) => i);
  }
  skdFor(rc, startIndex = 0, chainKey = e.advance(this.ck0, startIndex)) {
    return e.sealSkd(this.identity, e.parseCard(rc.card), { roomId: ROOM, epoch: this.epoch, keyId: this.keyId, startIndex, chainKey });
  }
  mk(index) {
    return e.chainStep(e.advance(this.ck0, index))[0];
  }
  envelope(index) {
    return e.sealEnvelope(this.identity, {
      roomId: ROOM,
      epoch: this.epoch,
      keyId: this.keyId,
      index,
      mk: this.mk(index),
      salt: new Uint8Array(16).fill(0x73),
      payload: { frankingKey: new Uint8Array(32).fill(0x66), msgType: 1, clientTsMs: T0, body: e.encodeText("x") },
    });
  }
}

async function joined(epoch = 1) {
  const b = new e.RoomCrypto(e.Identity.generate(), ROOM, { epoch });
  const a = new ManualSender(7, epoch);
  b.addMember(a.card);
  await b.receiveKeyShare(await a.skdFor(b));
  return { a, b };
}

/** Every value reachable from a chain object (own fields, Map entries, arrays). */
function* keptValues(obj) {
  if (obj instanceof Map) {
    for (const [k, v] of obj) {
      yield* keptValues(k);
      yield* keptValues(v);
    }
  } else if (Array.isArray(obj)) {
    for (const v of obj) yield* keptValues(v);
  } else if (obj !== null && typeof obj === "object" && !(obj instanceof Uint8Array)) {
    for (const v of Object.values(obj)) yield* keptValues(v);
  } else {
    yield obj;
  }
}

// --- forward secrecy ---------------------------------------------------------------------

test("a receiver chain keeps no start key and nothing that derives a consumed message key", () => {
  for (const order of [[0, 1, 2, 3], [3, 1, 0, 2], [2, 0, 3, 1]]) {
    const ck0 = new Uint8Array(32).fill(9);
    const chain = new e.ReceiverChain(new Uint8Array(16), 1, 7, ck0, 0);
    assert.ok(!("startCk" in chain) && !("startIndex" in chain));
    for (const i of order) chain.commit(chain.plan(i, T0), T0);
    assert.equal(chain.nextIndex, 4);
    assert.equal(chain.skipped.size, 0);
    const consumedMk = new Set([0, 1, 2, 3].map((i) => hex(e.chainStep(e.advance(ck0, i))[0])));
    const consumedCk = new Set([0, 1, 2, 3].map((i) => hex(e.advance(ck0, i))));
    const keys = [...keptValues(chain)].filter((v) => v instanceof Uint8Array && v.length === 32);
    assert.deepEqual(keys.map(hex), [hex(e.advance(ck0, 4))]);
    for (const k of keys) {
      assert.ok(!consumedMk.has(hex(k)) && !consumedCk.has(hex(k)));
      let ck = k;
      for (let j = 0; j < 64; j++) {
        const [mk, next] = e.chainStep(ck);
        assert.ok(!consumedMk.has(hex(mk)));
        ck = next;
      }
    }
  }
});

test("the skipped cache keeps only unread message keys", () => {
  const ck0 = new Uint8Array(32).fill(9);
  const mk = (i) => hex(e.chainStep(e.advance(ck0, i))[0]);
  const chain = new e.ReceiverChain(new Uint8Array(16), 1, 7, ck0, 0);
  chain.commit(chain.plan(5, T0), T0);
  assert.deepEqual([...chain.skipped].map(([i, [k]]) => [i, hex(k)]), [0, 1, 2, 3, 4].map((i) => [i, mk(i)]));
  chain.commit(chain.plan(2, T0), T0);
  const keys = new Set([...keptValues(chain)].filter((v) => v instanceof Uint8Array).map(hex));
  assert.ok(!keys.has(mk(2)) && !keys.has(mk(5)) && !keys.has(hex(ck0)));
});

// --- re-shares and equivocation -----------------------------------------------------------

test("harmless re-shares either side of our position are ignored", async () => {
  const { a, b } = await joined();
  for (let i = 0; i < 4; i++) b.decrypt(a.envelope(i));
  for (const start of [0, 2, 4, 9, 4 + e.MAX_SKIP]) await b.receiveKeyShare(await a.skdFor(b, start));
  throwsCode(() => b.decrypt(a.envelope(1)), "replay"); // nothing rewound
  assert.equal(b.decrypt(a.envelope(4)).text, "x");
  assert.equal(b.flagged.size, 0);
});

test("a different chain key under the same key_id is equivocation", async () => {
  for (const start of [0, 3, 5, 40]) {
    const { a, b } = await joined();
    for (let i = 0; i < 3; i++) b.decrypt(a.envelope(i));
    await rejects(b.receiveKeyShare(await a.skdFor(b, start, new Uint8Array(32).fill(0x99))), "equivocation");
    assert.ok(b.flagged.has(hex(a.identity.memberId)));
    assert.equal(b.decrypt(a.envelope(3)).text, "x");
  }
});

test("a re-share too far from our position", async () => {
  const { a, b } = await joined();
  for (const i of [0, 600, 1200]) b.decrypt(a.envelope(i)); // nextIndex 1201
  await rejects(b.receiveKeyShare(await a.skdFor(b, 0)), "too_far_ahead");
  await rejects(b.receiveKeyShare(await a.skdFor(b, 2202)), "too_far_ahead");
  await b.receiveKeyShare(await a.skdFor(b, 1201 - e.MAX_SKIP));
  await b.receiveKeyShare(await a.skdFor(b, 1201 + e.MAX_SKIP));
  assert.equal(b.flagged.size, 0);
});

// --- tombstones ------------------------------------------------------------------------------

test("an evicted chain is never reinstalled and its envelopes do not open again", async () => {
  let now = T0;
  const clock = () => now;
  const a = new e.RoomCrypto(e.Identity.generate(), ROOM, { epoch: 1, nowMs: clock });
  const b = new e.RoomCrypto(e.Identity.generate(), ROOM, { epoch: 1, nowMs: clock });
  a.addMember(b.card);
  b.addMember(a.card);
  const sent = [];
  for (let i = 0; i <= e.MAX_CHAINS_PER_SENDER; i++) {
    now += e.ROTATE_AFTER_MS;
    const env = a.encrypt(`m${i}`);
    const shares = await a.pendingKeyShares();
    assert.equal(shares.length, 1);
    await b.receiveKeyShare(shares[0][1]);
    sent.push([env, shares[0][1]]);
  }
  const [[firstEnv, firstSkd], ...live] = sent;
  throwsCode(() => b.decrypt(firstEnv), "unknown_chain");
  await rejects(b.receiveKeyShare(firstSkd), "replay");
  throwsCode(() => b.decrypt(firstEnv), "unknown_chain");
  for (const [env, skd] of live) {
    await b.receiveKeyShare(skd); // a live chain: harmless re-share
    assert.match(b.decrypt(env).text, /^m/);
  }
  assert.equal(b.flagged.size, 0);
});

test("a removed member coming back in the same epoch cannot reinstall its old chains", async () => {
  const { a, b } = await joined();
  const oldSkd = await a.skdFor(b);
  const oldEnv = a.envelope(0);
  b.removeMember(a.identity.memberId);
  b.addMember(a.card);
  await rejects(b.receiveKeyShare(oldSkd), "replay");
  throwsCode(() => b.decrypt(oldEnv), "unknown_chain");
  a.keyId += 1; // a fresh chain is welcome
  await b.receiveKeyShare(await a.skdFor(b));
  assert.equal(b.decrypt(a.envelope(0)).text, "x");
});

test("an epoch change clears the tombstones", async () => {
  const { a, b } = await joined();
  b.removeMember(a.identity.memberId);
  b.setEpoch(2);
  a.epoch = 2;
  b.addMember(a.card);
  await b.receiveKeyShare(await a.skdFor(b)); // same key_id, new epoch: another chain
  assert.equal(b.decrypt(a.envelope(0)).text, "x");
});

test("one sender's flood of chains never pushes out another sender's tombstones", async () => {
  const b = new e.RoomCrypto(e.Identity.generate(), ROOM, { epoch: 1 });
  const other = new ManualSender(1);
  const flood = new ManualSender(100000);
  b.addMember(other.card);
  b.addMember(flood.card);
  for (let k = 1; k <= e.MAX_CHAINS_PER_SENDER + 1; k++) {
    other.keyId = k;
    await b.receiveKeyShare(await other.skdFor(b));
  }
  // (The cap of MAX_TOMBSTONES_PER_SENDER itself is exercised by the Python test, where it can
  // be patched down; here 1,000+ HPKE round trips would take tens of seconds.)
  const total = e.MAX_CHAINS_PER_SENDER + 8;
  for (let k = 0; k < total; k++) {
    flood.keyId = 100000 + k;
    await b.receiveKeyShare(await flood.skdFor(b));
  }
  assert.equal(e.MAX_TOMBSTONES_PER_SENDER, 1024);
  other.keyId = 1;
  await rejects(b.receiveKeyShare(await other.skdFor(b)), "replay");
  for (const k of [0, 7]) {
    flood.keyId = 100000 + k;
    await rejects(b.receiveKeyShare(await flood.skdFor(b)), "replay");
  }
});
