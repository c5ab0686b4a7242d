// Reporting from the page (src/client.ts RoomSession.report, src/room/report.ts), driven without a
// server through a stand-in connection: for a received message the client keeps, in memory and
// bounded, the envelope, the push's `ts` and `stamp`, the franking key and the franked body, and
// sends `report.send` with exactly the fields docs/protocol.md names; that report verifies as the
// server would check it (stamp, commitment, the sender's signature). Refusals become sentences.
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { test } from "node:test";
import * as esbuild from "esbuild";
import { fakeConnClass, settle, until } from "../test-support/fake_conn.mjs";

const out = new URL("../test-build/report_from_page.mjs", import.meta.url).pathname;
await mkdir(new URL("../test-build/", import.meta.url).pathname, { recursive: true });
await esbuild.build({
  stdin: {
    contents: [
      'export * from "./client.ts";',
      'export * from "./e2ee/index.ts";',
      'export { b64id } from "./wire.ts";',
      'export { describeReportError, reasonLabel } from "./room/report.ts";',
    ].join("\n"),
    resolveDir: new URL("../src/", import.meta.url).pathname,
    loader: "ts",
  },
  outfile: out, bundle: true, format: "esm", platform: "node", logLevel: "warning",
  external: ["socket.io-client", "socket.io-msgpack-parser"],
});
globalThis.window ??= globalThis; // client.ts schedules with window.setTimeout
const c = await import(out);
const FakeConn = fakeConnClass(c);


function listener() {
  const messages = [];
  return {
    messages,
    message: (m) => messages.push(m),
    own() {},
    undecryptable() {},
    joined() {},
    left() {},
    renamed() {},
    members() {},
    typing() {},
    reconnected() {},
    ended() {},
    flagged() {},
  };
}

const view = (id, pseudonym, role, card) => ({ member_id: id, pseudonym, role, card, joined_at: 0, muted_until: null });

/** A listed room with bob (host) and carol; alice's RoomSession joins. The stand-in server stamps
 * every `msg` push with its own stamp key, as the real one does (e2ee.md §10). */
async function setup({ report = () => ({ ok: true, reporters: 1, hidden: false }), disappear = 0 } = {}) {
  const roomKey = c.defaultRng(16);
  const roomId = c.b64id(roomKey);
  const stampKey = c.defaultRng(32);
  const peer = (name, role) => {
    const identity = c.Identity.generate();
    const crypto = new c.RoomCrypto(identity, roomKey, { epoch: 1 });
    return { name, identity, crypto, id: c.b64id(identity.memberId), card: crypto.card, role };
  };
  const bob = peer("Bob", "host");
  const carol = peer("Carol", "member");
  const roomView = { room_id: roomId, kind: "session", visibility: "listed", topic: "t", title: null, state: "open", epoch: 1, capacity: 50, host_id: bob.id, lobby: false, disappear_after_s: disappear, pinned: null };
  const conn = new FakeConn({
    "room.join": (data) => {
      const aliceId = c.b64id(c.parseCard(data.card, roomKey).memberId);
      return {
        ok: true,
        room: { ...roomView },
        you: { ...view(aliceId, "Alice", "member", data.card), token: c.defaultRng(32) },
        members: [view(bob.id, "Bob", "host", bob.card), view(carol.id, "Carol", "member", carol.card), view(aliceId, "Alice", "member", data.card)],
        seq: 1,
      };
    },
    "report.send": report,
  });
  const l = listener();
  const room = new c.RoomSession(conn, { roomId, secret: null, hostSeed: null }, "Alice", l);
  conn.rooms.set(roomId, room);
  await room.join();
  for (const p of [bob, carol]) p.crypto.addMember(room.crypto.card);
  let seq = 1;
  const push = (name, data) => room.onPush(name, { room_id: roomId, ...data });
  /** `p` sends `text`: its key share first, then the `msg` push the server would deliver. */
  const say = async (p, text, { ts = Date.now(), stamp } = {}) => {
    const env = p.crypto.encrypt(c.encodeText(text));
    for (const [rid, skd] of await p.crypto.pendingKeyShares()) {
      if (c.hex(rid) === c.hex(room.crypto.memberId)) push("key", { from: p.id, skd });
    }
    push("msg", { seq: ++seq, ts, from: p.id, env, stamp: stamp === undefined ? c.serverStamp(stampKey, env, ts) : stamp });
    return { env, ts, digest: c.hex(c.sha256(env)) };
  };
  return { roomKey, roomId, stampKey, bob, carol, conn, room, l, say };
}

test("report.send carries the envelope, ts, stamp, franking key, franked body and reason", async () => {
  const { roomKey, roomId, stampKey, carol, conn, room, l, say } = await setup();
  const { env, ts, digest } = await say(carol, "you are worthless");
  await until(() => l.messages.length === 1);
  assert.equal(l.messages[0].digest, digest);
  assert.ok(room.canReport(digest));

  const result = await room.report(digest, "harassment");
  assert.deepEqual(result, { reporters: 1, hidden: false });
  const sent = conn.calls.filter(([e]) => e === "report.send");
  assert.equal(sent.length, 1);
  const p = sent[0][1];
  assert.deepEqual(Object.keys(p).sort(), ["body", "env", "franking_key", "reason", "room_id", "stamp", "ts"]);
  assert.equal(p.room_id, roomId);
  assert.equal(p.reason, "harassment");
  assert.deepEqual(p.env, env); // byte for byte as delivered
  assert.equal(p.ts, ts);
  assert.ok(Number.isInteger(p.ts));
  assert.equal(p.stamp.length, 32);
  assert.equal(p.franking_key.length, 32);
  // The franked body: u8 type ‖ u64 client_ts ‖ the type-1 body with the text.
  assert.equal(p.body[0], 1);
  assert.equal(c.decodeText(p.body.subarray(9)).text, "you are worthless");
  // As the server checks it: stamp, franking commitment and the accused's signature.
  const h = c.verifyReport(stampKey, p.env, p.ts, p.stamp, p.franking_key, p.body, c.parseCard(carol.card, roomKey));
  assert.equal(c.b64id(h.senderId), carol.id);
  // Changed text does not verify: the body is the one the sender committed to.
  const forged = p.body.slice();
  forged[forged.length - 3] ^= 1;
  assert.throws(() => c.verifyReport(stampKey, p.env, p.ts, p.stamp, p.franking_key, forged, c.parseCard(carol.card, roomKey)));
});

test("the ack's hidden flag comes back; a refusal is a ChatError with its code, shown as a sentence", async () => {
  let answer = { ok: true, reporters: 3, hidden: true };
  const { carol, room, l, say } = await setup({ report: () => answer });
  const a = await say(carol, "first");
  const b = await say(carol, "second");
  await until(() => l.messages.length === 2);
  assert.deepEqual(await room.report(a.digest, "spam"), { reporters: 3, hidden: true });
  for (const code of ["bad_report", "rate_limited", "not_in_room", "unknown_reason", "wrong_room", "not_member"]) {
    answer = { ok: false, error: { code, message: "raw server text" } };
    await assert.rejects(room.report(b.digest, "spam"), (e) => e instanceof c.ChatError && e.code === code);
    const sentence = c.describeReportError(code);
    assert.ok(!sentence.includes(code) && !sentence.includes("_") && sentence.endsWith("."), sentence);
    assert.notEqual(sentence, c.describeReportError("something_else"), `${code} has its own sentence`);
  }
  assert.equal(c.reasonLabel("self-harm risk"), "Self-harm risk");
});

test("only received, stamped messages are reportable; own messages never", async () => {
  const sent = [];
  const { carol, conn, room, l, say } = await setup();
  conn.handlers["msg.send"] = (data) => {
    sent.push(data.env);
    return { ok: true, seq: 0, ts: Date.now() };
  };
  const unstamped = await say(carol, "no stamp", { stamp: null });
  await until(() => l.messages.length === 1);
  assert.equal(room.canReport(unstamped.digest), false);
  await assert.rejects(room.report(unstamped.digest, "spam"), (e) => e.code === "no_evidence");
  const own = room.send("mine");
  await until(() => sent.length === 1);
  await until(() => own.digest !== undefined);
  assert.equal(room.canReport(own.digest), false);
  assert.equal(conn.calls.filter(([e]) => e === "report.send").length, 0);
});

test("evidence is bounded: the last MAX_EVIDENCE messages, the oldest dropped first", async () => {
  const { carol, room, l, say } = await setup();
  assert.equal(c.MAX_EVIDENCE, 500);
  const digests = [];
  for (let i = 0; i < c.MAX_EVIDENCE + 5; i++) digests.push((await say(carol, `line ${i}`)).digest);
  await until(() => l.messages.length === c.MAX_EVIDENCE + 5, 20000);
  assert.equal(room.evidenceCount, c.MAX_EVIDENCE);
  for (const d of digests.slice(0, 5)) assert.equal(room.canReport(d), false);
  for (const d of digests.slice(5)) assert.ok(room.canReport(d));
});

test("in a room with disappearing messages, evidence lapses with the message", async () => {
  const { carol, room, l, say } = await setup({ disappear: 300 });
  const old = await say(carol, "long gone", { ts: Date.now() - 301_000 });
  const fresh = await say(carol, "still here");
  await until(() => l.messages.length === 2);
  assert.equal(room.canReport(old.digest), false);
  assert.ok(room.canReport(fresh.digest));
});

test("nothing is kept once the room is closed", async () => {
  const { carol, room, l, say } = await setup();
  const m = await say(carol, "bye");
  await until(() => l.messages.length === 1);
  assert.ok(room.canReport(m.digest));
  await room.leave();
  await settle();
  assert.equal(room.evidenceCount, 0);
});
