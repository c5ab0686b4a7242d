// RoomCrypto behaviour (mirrors tests/e2ee for session.py): key shares before envelopes,
// replay window, epochs, joiners cannot read history, equivocation is flagged.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as e from "../test-build/e2ee.mjs";

const ROOM = new Uint8Array(16).fill(7);

async function pair() {
  const a = new e.RoomCrypto(e.Identity.generate(), ROOM, { epoch: 1 });
  const b = new e.RoomCrypto(e.Identity.generate(), ROOM, { epoch: 1 });
  a.addMember(b.card);
  b.addMember(a.card);
  return [a, b];
}

async function deliver(from, to) {
  for (const [rid, skd] of await from.pendingKeyShares()) {
    if (e.hex(rid) === e.hex(to.memberId)) await to.receiveKeyShare(skd);
  }
}

test("encrypt, share, decrypt; own messages and replays are refused", async () => {
  const [a, b] = await pair();
  const env = a.encrypt("hello");
  await deliver(a, b);
  const opened = b.decrypt(env);
  assert.equal(opened.text, "hello");
  assert.throws(() => b.decrypt(env), (err) => err.code === "replay");
  assert.throws(() => a.decrypt(env), (err) => err.code === "own_message");
  assert.equal(a.safetyCode(), b.safetyCode());
});

test("out-of-order delivery uses skipped keys", async () => {
  const [a, b] = await pair();
  const e1 = a.encrypt("one");
  await deliver(a, b);
  const e2 = a.encrypt("two");
  const e3 = a.encrypt("three");
  assert.equal(b.decrypt(e3).text, "three");
  assert.equal(b.decrypt(e1).text, "one");
  assert.equal(b.decrypt(e2).text, "two");
});

test("unknown chain until the SKD arrives; a joiner reads no history", async () => {
  const [a, b] = await pair();
  const before = a.encrypt("before");
  assert.throws(() => b.decrypt(before), (err) => err.code === "unknown_chain");
  await deliver(a, b);
  assert.equal(b.decrypt(before).text, "before");
  const c = new e.RoomCrypto(e.Identity.generate(), ROOM, { epoch: 1 });
  a.addMember(c.card);
  c.addMember(a.card);
  const after = a.encrypt("after");
  await deliver(a, c);
  assert.equal(c.decrypt(after).text, "after");
  assert.throws(() => c.decrypt(before), (err) => err.code === "replay");
});

test("epoch bump drops chains; old envelopes are refused", async () => {
  const [a, b] = await pair();
  const old = a.encrypt("old");
  await deliver(a, b);
  a.setEpoch(2);
  b.setEpoch(2);
  assert.throws(() => b.decrypt(old), (err) => err.code === "old_epoch");
  const fresh = a.encrypt("fresh");
  await deliver(a, b);
  assert.equal(b.decrypt(fresh).text, "fresh");
  assert.throws(() => a.setEpoch(1), (err) => err.code === "old_epoch");
});

test("equivocation: a second chain key for the same key_id flags the sender", async () => {
  const aliceId = e.Identity.generate();
  const a = new e.RoomCrypto(aliceId, ROOM, { epoch: 1 });
  const b = new e.RoomCrypto(e.Identity.generate(), ROOM, { epoch: 1 });
  a.addMember(b.card);
  b.addMember(a.card);
  const bobCard = e.parseCard(b.card);
  const p = { roomId: ROOM, epoch: 1, keyId: 42, startIndex: 0 };
  await b.receiveKeyShare(await e.sealSkd(aliceId, bobCard, { ...p, chainKey: new Uint8Array(32).fill(1) }));
  // A re-share of the same chain further along is harmless.
  await b.receiveKeyShare(
    await e.sealSkd(aliceId, bobCard, { ...p, startIndex: 3, chainKey: e.advance(new Uint8Array(32).fill(1), 3) }),
  );
  await assert.rejects(
    b.receiveKeyShare(await e.sealSkd(aliceId, bobCard, { ...p, chainKey: new Uint8Array(32).fill(2) })),
    (err) => err.code === "equivocation",
  );
  assert.ok(b.flagged.has(e.hex(a.memberId)));
});

test("a second, different card for a known member is refused", async () => {
  const [a] = await pair();
  const id = e.Identity.generate();
  a.addMember(id.card(ROOM, 1));
  assert.throws(() => a.addMember(id.card(ROOM, 2)), (err) => err.code === "bad_card");
});

test("rotation after 100 messages starts a new chain that needs a new share", async () => {
  const [a, b] = await pair();
  await deliver(a, b);
  let env;
  for (let i = 0; i < 100; i++) b.decrypt(a.encrypt(`m${i}`));
  env = a.encrypt("rotated");
  assert.throws(() => b.decrypt(env), (err) => err.code === "unknown_chain");
  await deliver(a, b);
  assert.equal(b.decrypt(env).text, "rotated");
});
