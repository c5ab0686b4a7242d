// Key shares leave the browser client (src/client.ts) as `key.send` batches: the whole outbox in
// one request (up to MAX_KEY_SHARES, each recipient once), retried whole after `rate_limited` or
// `unavailable`, and done with once acknowledged, refused shares included. Driven without a
// server through the stand-in connection.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bundle } from "../test-support/bundle.mjs";
import { fakeConnClass, settle, until } from "../test-support/fake_conn.mjs";

globalThis.window ??= globalThis; // client.ts schedules with window.setTimeout
const c = await bundle("key_batch", ["client.ts", "e2ee/index.ts", "wire.ts"], {
  dir: ".",
  external: ["socket.io-client", "socket.io-msgpack-parser"],
});
const FakeConn = fakeConnClass(c);
const infos = [];
console.info = (...args) => infos.push(args.join(" "));

const listener = () => ({
  message() {}, own() {}, undecryptable() {}, joined() {}, left() {}, renamed() {}, members() {},
  typing() {}, reconnected() {}, ended() {}, flagged() {}, pinned() {},
});

/** Alice joins a listed room of `others` members at epoch 1; `keySend` answers her key.send. */
async function room(others, keySend) {
  const roomKey = c.defaultRng(16);
  const roomId = c.b64id(roomKey);
  const peers = Array.from({ length: others }, (_, i) => {
    const identity = c.Identity.generate();
    const crypto = new c.RoomCrypto(identity, roomKey, { epoch: 1 });
    return { id: c.b64id(identity.memberId), card: crypto.card, name: `Peer ${i}` };
  });
  const view = (id, pseudonym, card) => ({ member_id: id, pseudonym, role: "member", card, joined_at: 0, muted_until: null });
  const roomView = { room_id: roomId, kind: "peer", visibility: "listed", topic: "t", title: null, state: "open", epoch: 1, capacity: 500, host_id: null, lobby: false, disappear_after_s: 0, pinned: null };
  const conn = new FakeConn({
    "room.join": (data) => {
      const aliceId = c.b64id(c.parseCard(data.card, roomKey).memberId);
      const alice = view(aliceId, "Alice", data.card);
      return { ok: true, room: roomView, you: { ...alice, token: c.defaultRng(32) }, members: [...peers.map((p) => view(p.id, p.name, p.card)), alice], seq: 1 };
    },
    "key.send": keySend,
  });
  const session = new c.RoomSession(conn, { roomId, secret: null, hostSeed: null }, "Alice", listener());
  conn.rooms.set(roomId, session);
  await session.join();
  return { conn, peers, session };
}

const keySends = (conn) => conn.calls.filter(([e]) => e === "key.send").map(([, d]) => d);

test("nextKeyBatch: at most MAX_KEY_SHARES shares, each recipient once, in outbox order", () => {
  const id = (n) => new Uint8Array(16).fill(n % 256).map((v, i) => (i === 0 ? n >> 8 : v));
  const outbox = Array.from({ length: 300 }, (_, n) => [id(n), new Uint8Array([n % 256])]);
  assert.equal(c.MAX_KEY_SHARES, 128);
  assert.deepEqual(c.nextKeyBatch(outbox), outbox.slice(0, 128));
  const twice = [outbox[0], outbox[1], [outbox[0][0], new Uint8Array([9])], outbox[2]];
  assert.deepEqual(c.nextKeyBatch(twice), twice.slice(0, 2));
  assert.deepEqual(c.nextKeyBatch([]), []);
});

test("joining a room of 200 shares nothing; the first message shares the chain in two requests, not 200", async () => {
  const { conn, peers, session } = await room(200, (data) => ({ ok: true, delivered: data.shares.length, refused: [] }));
  await settle();
  assert.equal(keySends(conn).length, 0); // a member who only reads costs the room no key traffic
  session.send("hello");
  await until(() => keySends(conn).flatMap((d) => d.shares).length === 200);
  await settle();
  const sends = keySends(conn);
  assert.deepEqual(sends.map((d) => d.shares.length), [128, 72]);
  assert.deepEqual(new Set(sends.flatMap((d) => d.shares.map((s) => s.to))), new Set(peers.map((p) => p.id)));
  for (const d of sends) for (const s of d.shares) assert.equal(Object.keys(s).sort().join(), "skd,to");
});

test("a rate-limited or unavailable batch is sent again whole; refused shares are done with", async () => {
  const answers = [
    { ok: false, error: { code: "rate_limited", message: "slow down", retry_after: 0.01 } },
    { ok: false, error: { code: "unavailable", message: "retry", retry_after: 0.01 } },
  ];
  let refusedTo = null;
  const { conn, peers, session } = await room(3, (data) => {
    const next = answers.shift();
    if (next) return next;
    refusedTo = data.shares[1].to;
    return { ok: true, delivered: 1, refused: [{ to: data.shares[1].to, code: "unknown_recipient" }, { to: data.shares[2].to, code: "bad_signature" }] };
  });
  session.send("hello");
  await until(() => keySends(conn).length === 3);
  await settle();
  const sends = keySends(conn);
  assert.equal(sends.length, 3); // no share is sent again after the ok
  for (const d of sends) assert.deepEqual(d.shares, sends[0].shares);
  assert.deepEqual(new Set(sends[0].shares.map((s) => s.to)), new Set(peers.map((p) => p.id)));
  assert.ok(refusedTo);
  // Only the unexpected refusal is logged, by its code (nothing the client sent).
  assert.deepEqual(infos.filter((line) => line.includes("not delivered")), ["chatserver: a sender key was not delivered (bad_signature)"]);
});
