// Resume in pages (src/client.ts, docs/protocol.md room.resume and room.catchup), driven without a
// server through a stand-in connection: the resume ack carries the first page of what was missed
// and `more`; the session asks room.catchup for the next pages from the last seq it received, up
// to the ack's seq, and shows every message once and in order, live pushes that came meanwhile
// included; a catch-up page that says `gap` is handled as a gap on resume.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bundle } from "../test-support/bundle.mjs";
import { fakeConnClass, settle, until } from "../test-support/fake_conn.mjs";

globalThis.window ??= globalThis; // client.ts schedules with window.setTimeout
const c = await bundle(
  "resume_pages",
  ["client.ts", "e2ee/index.ts", "wire.ts"],
  { dir: ".", external: ["socket.io-client", "socket.io-msgpack-parser"] },
);
const FakeConn = fakeConnClass(c);


function listener() {
  const log = { texts: [], seqs: [], undecryptable: [], reconnected: [] };
  return {
    log,
    message: (m) => {
      log.texts.push(m.text);
      log.seqs.push(m.seq);
    },
    undecryptable: (m) => log.undecryptable.push(m),
    reconnected: (resumed, gap) => log.reconnected.push([resumed, gap]),
    own() {}, joined() {}, left() {}, renamed() {}, members() {}, typing() {}, ended() {}, flagged() {}, pinned() {},
  };
}

const view = (id, pseudonym, role, card) => ({ member_id: id, pseudonym, role, card, joined_at: 0, muted_until: null, member_proof: null, admission: null });

/** Alice joined a listed room at seq 1 with Bob (host); then she was away while Bob sent `count`
 * messages (seq 2 onwards). `pages` is the resume and catch-up answer for a given after_seq. */
async function setup(count) {
  const roomKey = c.defaultRng(16);
  const roomId = c.b64id(roomKey);
  const bobIdentity = c.Identity.generate();
  const bob = { identity: bobIdentity, crypto: new c.RoomCrypto(bobIdentity, roomKey, { epoch: 1 }), id: c.b64id(bobIdentity.memberId) };
  const roomView = { room_id: roomId, kind: "peer", visibility: "listed", topic: "t", title: null, state: "open", epoch: 1, capacity: 50, host_id: bob.id, lobby: false, disappear_after_s: 0, pinned: null };
  const token = c.defaultRng(32);
  let aliceCard = null;
  const snapshot = (seq, extra = {}) => {
    const aliceId = c.b64id(c.parseCard(aliceCard, roomKey).memberId);
    return { ok: true, room: { ...roomView }, you: { ...view(aliceId, "Alice", "member", aliceCard), token }, members: [view(bob.id, "Bob", "host", bob.crypto.card), view(aliceId, "Alice", "member", aliceCard)], seq, ...extra };
  };
  const conn = new FakeConn({
    "room.join": (data) => {
      aliceCard = data.card;
      return snapshot(1);
    },
  });
  const l = listener();
  const room = new c.RoomSession(conn, { roomId, secret: null, hostSeed: null }, "Alice", l);
  conn.rooms.set(roomId, room);
  await room.join();
  bob.crypto.addMember(room.crypto.card);
  const events = [];
  for (let i = 0; i < count; i++) {
    const env = bob.crypto.encrypt(c.encodeText(`m${i}`));
    events.push({ event: "msg", room_id: roomId, seq: 2 + i, ts: 1000 + i, from: bob.id, env, stamp: new Uint8Array(32) });
  }
  const keys = [];
  for (const [rid, skd] of await bob.crypto.pendingKeyShares()) {
    if (c.hex(rid) === c.hex(room.crypto.memberId)) keys.push({ event: "key", room_id: roomId, from: bob.id, skd });
  }
  /** The next page after `after`: at most `size` events, `more` while the buffer holds others. */
  const page = (after, size) => {
    const rest = events.filter((e) => e.seq > after);
    const events_ = rest.slice(0, size);
    return { events: events_, more: rest.length > size, gap: false };
  };
  const head = 1 + count;
  return { roomId, room, conn, l, events, keys, page, snapshot, head, bob };
}

test("resume with `more`: the session follows room.catchup page by page and shows every message in order", async () => {
  const s = await setup(10);
  s.conn.handlers["room.resume"] = (data) => s.snapshot(s.head, { ...s.page(data.last_seq, 4), keys: s.keys });
  s.conn.handlers["room.catchup"] = (data) => ({ ok: true, ...s.page(data.after_seq, 4) });
  await s.room.resume();
  await settle();
  assert.deepEqual(s.l.log.texts, Array.from({ length: 10 }, (_, i) => `m${i}`));
  assert.deepEqual(s.l.log.seqs, Array.from({ length: 10 }, (_, i) => 2 + i));
  const resumed = s.conn.calls.find(([e]) => e === "room.resume")[1];
  assert.equal(resumed.last_seq, 1);
  // Each page asked from the seq of the last event received: 2-5 came with the resume ack.
  const catchups = s.conn.calls.filter(([e]) => e === "room.catchup").map(([, d]) => d);
  assert.deepEqual(catchups, [{ room_id: s.roomId, after_seq: 5 }, { room_id: s.roomId, after_seq: 9 }]);
  assert.deepEqual(s.l.log.reconnected, [[true, false]]);
  assert.equal(s.room.seq, s.head);
  assert.deepEqual(s.l.log.undecryptable, []);
});

test("live pushes during the catch-up wait for it, and the catch-up stops at the resume ack's seq", async () => {
  const s = await setup(8);
  // Two more messages after the snapshot: pushed live to the re-attached seat while Alice is
  // still fetching pages, and also in the buffer (so the server's `more` stays true).
  const live = [];
  for (const i of [8, 9]) {
    const env = s.bob.crypto.encrypt(c.encodeText(`m${i}`));
    live.push({ room_id: s.roomId, seq: 2 + i, ts: 1000 + i, from: s.bob.id, env, stamp: new Uint8Array(32) });
  }
  const buffered = [...s.events, ...live.map((e) => ({ event: "msg", ...e }))];
  const page = (after) => {
    const rest = buffered.filter((e) => e.seq > after);
    return { events: rest.slice(0, 3), more: rest.length > 3, gap: false };
  };
  s.conn.handlers["room.resume"] = (data) => s.snapshot(s.head, { ...page(data.last_seq), keys: s.keys });
  s.conn.handlers["room.catchup"] = async (data) => {
    // The newest first, as a busy room might deliver them before the pages are in.
    for (const e of [...live].reverse()) s.room.onPush("msg", e);
    await settle();
    return { ok: true, ...page(data.after_seq) };
  };
  await s.room.resume();
  await settle();
  assert.deepEqual(s.l.log.texts, Array.from({ length: 10 }, (_, i) => `m${i}`));
  assert.deepEqual(s.l.log.seqs, Array.from({ length: 10 }, (_, i) => 2 + i));
  // Pages from 1 (resume: 2-4), 4 (5-7), 7 (8-10 reaches the ack's seq 9): no fourth.
  assert.deepEqual(s.conn.calls.filter(([e]) => e === "room.catchup").map(([, d]) => d.after_seq), [4, 7]);
  assert.deepEqual(s.l.log.reconnected, [[true, false]]);
});

test("a catch-up page with `gap` is a gap on resume: the snapshot's seq, and the live pushes after it", async () => {
  const s = await setup(9);
  s.conn.handlers["room.resume"] = (data) => s.snapshot(s.head, { ...s.page(data.last_seq, 3), keys: s.keys });
  s.conn.handlers["room.catchup"] = () => ({ ok: true, events: [], more: false, gap: true });
  await s.room.resume();
  await settle();
  assert.deepEqual(s.l.log.texts, ["m0", "m1", "m2"]);
  assert.deepEqual(s.l.log.reconnected, [[true, true]]);
  assert.equal(s.room.seq, s.head);
  const env = s.bob.crypto.encrypt(c.encodeText("after"));
  s.room.onPush("msg", { room_id: s.roomId, seq: s.head + 1, ts: 2000, from: s.bob.id, env, stamp: new Uint8Array(32) });
  await settle();
  assert.deepEqual(s.l.log.texts, ["m0", "m1", "m2", "after"]);
});

test("a rate-limited catch-up page waits `retry_after` and asks again", async () => {
  const s = await setup(4);
  let refused = 0;
  s.conn.handlers["room.resume"] = (data) => s.snapshot(s.head, { ...s.page(data.last_seq, 2), keys: s.keys });
  s.conn.handlers["room.catchup"] = (data) => {
    if (refused++ === 0) return { ok: false, error: { code: "rate_limited", message: "slow down", retry_after: 0.01 } };
    return { ok: true, ...s.page(data.after_seq, 2) };
  };
  await s.room.resume();
  await settle();
  assert.deepEqual(s.l.log.texts, ["m0", "m1", "m2", "m3"]);
  assert.deepEqual(s.conn.calls.filter(([e]) => e === "room.catchup").map(([, d]) => d.after_seq), [3, 3]);
});

test("a resume answered `unavailable` keeps the seat: asked again (the challenge too), never a fresh join", async () => {
  const s = await setup(3);
  const memberId = s.room.memberId;
  let resumes = 0;
  let challenges = 0;
  const challenge = s.conn.handlers["room.challenge"];
  s.conn.handlers["room.challenge"] = (data) => {
    if (challenges++ === 0) return { ok: false, error: { code: "unavailable", message: "retry", retry_after: 0.01 } };
    return challenge(data);
  };
  s.conn.handlers["room.resume"] = (data) => {
    if (resumes++ === 0) return { ok: false, error: { code: "unavailable", message: "retry", retry_after: 0.01 } };
    return s.snapshot(s.head, { ...s.page(data.last_seq, 10), keys: s.keys });
  };
  await s.room.resume();
  await settle();
  assert.equal(resumes, 2);
  assert.equal(challenges, 3); // one refused, one per resume asked
  assert.equal(s.conn.calls.filter(([e]) => e === "room.join").length, 1); // the first join only
  assert.equal(s.room.memberId, memberId);
  assert.deepEqual(s.l.log.reconnected, [[true, false]]);
  assert.deepEqual(s.l.log.texts, ["m0", "m1", "m2"]);
  // Each resume answered a fresh challenge with the seat's key.
  const proofs = s.conn.calls.filter(([e]) => e === "room.resume").map(([, d]) => c.hex(d.seat_proof));
  assert.equal(new Set(proofs).size, 2);
});

test("only `resume_failed` gives the seat up: a fresh join, told as a gap", async () => {
  const s = await setup(1);
  const memberId = s.room.memberId;
  s.conn.handlers["room.resume"] = () => ({ ok: false, error: { code: "resume_failed", message: "gone" } });
  await s.room.resume();
  await settle();
  assert.equal(s.conn.calls.filter(([e]) => e === "room.join").length, 2);
  assert.notEqual(s.room.memberId, memberId);
  assert.deepEqual(s.l.log.reconnected, [[false, true]]);
});

test("a message answered `unavailable` stays pending and goes again with the same envelope", async () => {
  const s = await setup(0);
  s.conn.handlers["room.resume"] = (data) => s.snapshot(s.head, { ...s.page(data.last_seq, 10), keys: s.keys });
  await s.room.resume();
  const envs = [];
  s.conn.handlers["msg.send"] = (data) => {
    envs.push(c.hex(data.env));
    if (envs.length === 1) return { ok: false, error: { code: "unavailable", message: "retry", retry_after: 0.01 } };
    return { ok: true, seq: s.head + 1, ts: 5000 };
  };
  const msg = s.room.send("hello");
  await until(() => msg.state !== "pending", 3000);
  assert.equal(msg.state, "sent");
  assert.equal(msg.seq, s.head + 1);
  assert.equal(envs.length, 2);
  assert.equal(envs[0], envs[1]);
});
