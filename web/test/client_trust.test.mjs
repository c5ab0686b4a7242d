// The room session's trust rules (src/client.ts), driven without a server through a stand-in
// connection: every join, knock and resume answers a fresh room challenge with the card key's seat
// proof (and, in a private room, the link proof over the same nonce); a message's sender is the
// envelope's signed sender, and a push whose `from` says otherwise is dropped; a member.left that
// does not move the epoch forward is dropped; questions are signed by their asker; in a private
// room a member card without the link key's member proof is never admitted, and the host id and
// lobby flag are the link-signed charter's, never the view's; a moderator's or co-host's role counts
// only with a statement signed by a trusted host (src/e2ee/roles.ts). Also the report view's field
// list (src/console/report.ts).
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { test } from "node:test";
import * as esbuild from "esbuild";
import { fakeConnClass, settle, until } from "../test-support/fake_conn.mjs";

const out = new URL("../test-build/client_trust.mjs", import.meta.url).pathname;
await mkdir(new URL("../test-build/", import.meta.url).pathname, { recursive: true });
await esbuild.build({
  stdin: {
    contents: [
      'export * from "./client.ts";',
      'export * from "./e2ee/index.ts";',
      'export * from "./e2ee/seat.ts";',
      'export * from "./e2ee/question.ts";',
      'export * from "./e2ee/member_link.ts";',
      'export * from "./e2ee/charter.ts";',
      'export { admissionMessage } from "./console/credentials.ts";',
      'export { b64id, unb64id } from "./wire.ts";',
      'export { reportFields, visible } from "./console/report.ts";',
      'export * from "./e2ee/roles.ts";',
      'export { quoteBlock } from "./room/qa.ts";',
      'export { mayActOn } from "./console/members.ts";',
    ].join("\n"),
    resolveDir: new URL("../src/", import.meta.url).pathname,
    loader: "ts",
  },
  outfile: out, bundle: true, format: "esm", platform: "node", logLevel: "warning",
  external: ["socket.io-client", "socket.io-msgpack-parser"],
});
globalThis.window ??= globalThis; // client.ts schedules with window.setTimeout
// quoteBlock (src/room/qa.ts) builds elements: a minimal stand-in document is enough to see one.
globalThis.document ??= {
  createElement: (tag) => ({ tag, attrs: {}, children: [], setAttribute(k, v) { this.attrs[k] = v; }, append(...n) { this.children.push(...n); } }),
};
const c = await import(out);
const FakeConn = fakeConnClass(c);

const warnings = [];
console.warn = (...args) => warnings.push(args.join(" "));

function listener() {
  const log = { message: [], own: [], undecryptable: [], left: [], joined: [], pinned: [], ended: [] };
  const l = {
    log,
    message: (m) => log.message.push(m),
    own: (m) => log.own.push({ ...m }),
    undecryptable: (m) => log.undecryptable.push(m),
    joined: (m) => log.joined.push(m),
    left: (m) => log.left.push(m),
    renamed() {},
    members() {},
    typing() {},
    reconnected() {},
    ended: (r) => log.ended.push(r),
    flagged() {},
    pinned: (pin, how) => log.pinned.push([pin, how]),
  };
  return l;
}

const view = (id, pseudonym, role, card) => ({ member_id: id, pseudonym, role, card, joined_at: 0, muted_until: null });

/** A host's lobby admission of `card`: u32 epoch ‖ the host's signature (as RoomSession.admit). */
const admission = (host, roomKey, card, epoch = 1) =>
  c.concat(c.u32(epoch), host.identity.sign(c.admissionMessage(roomKey, epoch, card)));

/** A room with bob (host) and carol already in it, at epoch 1; alice's RoomSession joins. In a
 * private room (`secret`) bob and carol carry member link proofs signed with the same secret, and
 * the view carries the charter `charter(bob)` returns (by default: bob hosts, no lobby). `view`
 * overrides fields of the room view; `join: false` leaves the joining to the test. */
async function setup({ secret = null, charter = (bob) => c.makeCharter(secret, bob.identity.memberId, false), view: viewFields = {}, join = true } = {}) {
  const roomKey = secret ? secret.roomId : c.defaultRng(16);
  const roomId = c.b64id(roomKey);
  const peer = (name, role) => {
    const identity = c.Identity.generate();
    const crypto = new c.RoomCrypto(identity, roomKey, { epoch: 1 });
    const memberProof = secret ? c.signMember(secret, identity.memberId) : null;
    return { name, identity, crypto, id: c.b64id(identity.memberId), card: crypto.card, role, memberProof };
  };
  const member = (p) => ({ ...view(p.id, p.name, p.role, p.card), member_proof: p.memberProof, admission: p.admission ?? null });
  const bob = peer("Bob", "host");
  const carol = peer("Carol", "member");
  carol.admission = admission(bob, roomKey, carol.card); // for a lobby room: bob let her in
  const roomView = { room_id: roomId, kind: "peer", visibility: secret ? "unlisted" : "listed", topic: "t", title: null, state: "open", epoch: 1, capacity: 50, host_id: bob.id, lobby: false, disappear_after_s: 0, pinned: null };
  if (secret) roomView.charter = charter(bob);
  Object.assign(roomView, viewFields);
  const token = c.defaultRng(32);
  let seq = 1;
  const snapshot = (card, extra = {}) => {
    const aliceId = c.b64id(c.parseCard(card, roomKey).memberId);
    return {
      ok: true,
      room: { ...roomView },
      you: { ...view(aliceId, "Alice", "member", card), token },
      members: [member(bob), member(carol), view(aliceId, "Alice", "member", card)],
      seq,
      ...extra,
    };
  };
  const sent = [];
  const conn = new FakeConn({
    "room.join": (data) => snapshot(data.card),
    "msg.send": (data) => {
      sent.push(data.env);
      return { ok: true, seq: 0, ts: Date.now() };
    },
  });
  const l = listener();
  const link = { roomId, secret, hostSeed: null };
  const room = new c.RoomSession(conn, link, "Alice", l);
  conn.rooms.set(roomId, room);
  if (!join) return { roomKey, roomId, bob, carol, conn, room, l, snapshot, peer, member, roomView };
  await room.join();
  const aliceCard = room.crypto.card;
  for (const p of [bob, carol]) p.crypto.addMember(aliceCard);
  const push = (name, data) => room.onPush(name, { room_id: roomId, ...data });
  const next = () => ++seq;
  /** A sealed message from a peer, with its key share delivered to alice first. */
  const from = async (p, text, extra = {}) => {
    const env = p.crypto.encrypt(c.encodeText(text, extra));
    for (const [rid, skd] of await p.crypto.pendingKeyShares()) {
      if (c.hex(rid) === c.hex(room.crypto.memberId)) push("key", { from: p.id, skd });
    }
    await settle();
    return env;
  };
  return { roomKey, roomId, bob, carol, conn, room, l, push, next, from, sent, aliceCard, snapshot, token, peer, member, roomView };
}

test("join: the seat proof signs the fresh room challenge with the card's own key", async () => {
  const { conn, roomKey, room } = await setup();
  const [event, data] = conn.calls.find(([e]) => e === "room.join");
  assert.equal(event, "room.join");
  const card = c.parseCard(data.card, roomKey);
  assert.ok(c.verifySeatProof(card.edPublic, roomKey, conn.lastNonce, card.memberId, data.seat_proof));
  assert.equal(data.proof, undefined); // a listed room: no link proof
  assert.equal(c.b64id(card.memberId), room.memberId);
  // The challenge came first, for this room.
  assert.deepEqual(conn.calls[0], ["room.challenge", { room_id: room.roomId }]);
});

test("join of a private room: one challenge feeds both the seat proof and the link proof", async () => {
  const secret = c.newRoomSecret();
  const { conn, roomKey } = await setup({ secret });
  assert.equal(conn.calls.filter(([e]) => e === "room.challenge").length, 1);
  const data = conn.calls.find(([e]) => e === "room.join")[1];
  const card = c.parseCard(data.card, roomKey);
  assert.ok(c.verifySeatProof(card.edPublic, roomKey, conn.lastNonce, card.memberId, data.seat_proof));
  assert.ok(c.verifyJoinProof(secret.joinPublic, roomKey, conn.lastNonce, card.memberId, data.proof));
  assert.ok(!c.verifySeatProof(card.edPublic, roomKey, conn.lastNonce, card.memberId, data.proof));
});

test("join of a private room: member_proof is the link key's signature over our member id", async () => {
  const secret = c.newRoomSecret();
  const { conn, roomKey, room } = await setup({ secret });
  const data = conn.calls.find(([e]) => e === "room.join")[1];
  const card = c.parseCard(data.card, roomKey);
  assert.ok(data.member_proof instanceof Uint8Array && data.member_proof.length === 64);
  assert.ok(c.verifyMemberLinkProof(secret.joinPublic, roomKey, card.memberId, data.member_proof));
  assert.ok(!c.verifyMemberLinkProof(c.newRoomSecret().joinPublic, roomKey, card.memberId, data.member_proof));
  assert.equal(c.b64id(card.memberId), room.memberId);
  // Bob and Carol carried valid proofs: both admitted, none counted.
  assert.equal(room.unproven, 0);
  assert.equal(room.members.size, 3);
});

test("join of a listed room: no member_proof, and members need none", async () => {
  const { conn, room } = await setup();
  const data = conn.calls.find(([e]) => e === "room.join")[1];
  assert.equal("member_proof" in data, false);
  assert.equal(room.members.size, 3);
  assert.equal(room.unproven, 0);
});

/** The key shares alice sent (each `key.send` call of the stand-in connection is a batch). */
const keyShares = (conn) => conn.calls.filter(([e]) => e === "key.send").flatMap(([, d]) => d.shares);
/** Who alice sealed a key share for. */
const keyShareRecipients = (conn) => keyShares(conn).map((share) => share.to);

test("private room: a ghost card without a valid member proof is not admitted and gets no keys", async () => {
  const secret = c.newRoomSecret();
  const s = await setup({ secret });
  const { room, conn, push, next, l, carol, bob } = s;
  // Keys go out with alice's first message, to the members she admitted.
  room.send("hello");
  await until(() => keyShareRecipients(conn).length === 2);
  assert.deepEqual(new Set(keyShareRecipients(conn)), new Set([bob.id, carol.id]));
  warnings.length = 0;
  const ghosts = [];
  // No proof at all; a proof for another member id; another link's proof; a proof that is no bytes.
  const g1 = s.peer("Ghost1", "member");
  push("member.joined", { seq: next(), ts: 1, member: { ...s.member(g1), member_proof: null } });
  const g2 = s.peer("Ghost2", "member");
  push("member.joined", { seq: next(), ts: 2, member: { ...s.member(g2), member_proof: carol.memberProof } });
  const g3 = s.peer("Ghost3", "member");
  push("member.joined", { seq: next(), ts: 3, member: { ...s.member(g3), member_proof: c.signMember({ ...c.newRoomSecret(), roomId: s.roomKey }, g3.identity.memberId) } });
  const g4 = s.peer("Ghost4", "member");
  push("member.joined", { seq: next(), ts: 4, member: { ...s.member(g4), member_proof: c.hex(c.signMember(secret, g4.identity.memberId)) } });
  // A ghost card under carol's label, with carol's valid proof: the proof is over the card's id.
  const g5 = s.peer("Ghost5", "member");
  push("member.joined", { seq: next(), ts: 5, member: { ...s.member(g5), member_id: carol.id, member_proof: carol.memberProof } });
  ghosts.push(g1, g2, g3, g4, g5);
  await until(() => room.seq === 6);
  // Four without a valid proof; the fifth names carol's id with another card (refused first).
  assert.equal(room.unproven, 4);
  assert.equal(room.cardMismatch, 1);
  for (const g of ghosts) assert.ok(!room.members.has(g.id));
  assert.equal(room.members.size, 3);
  assert.equal(c.hex(room.members.get(carol.id).card), c.hex(carol.card)); // carol's card untouched
  const known = new Set(room.crypto.members().map((kc) => c.b64id(kc.memberId)));
  for (const g of ghosts) assert.ok(!known.has(g.id));
  assert.equal(l.log.joined.length, 0); // never announced
  // Sending seals to bob and carol only; nothing is pending for a ghost.
  room.send("for the members only");
  await until(() => s.sent.length === 2);
  await settle();
  const recipients = keyShareRecipients(conn);
  for (const g of ghosts) assert.ok(!recipients.includes(g.id));
  assert.deepEqual((await room.crypto.pendingKeyShares()).map(([rid]) => c.b64id(rid)), []);
  // A later update for a refused ghost does not list it either.
  push("member.updated", { seq: next(), ts: 6, member: { ...s.member(g1), pseudonym: "Renamed" } });
  await settle();
  assert.ok(!room.members.has(g1.id));
  assert.equal(warnings.length, 5);
  for (const w of warnings) {
    assert.ok(!w.includes("Ghost") && !ghosts.some((g) => w.includes(g.id)), "the warning carries no content");
  }
});

test("private room: a ghost in a resume snapshot is not admitted either", async () => {
  const secret = c.newRoomSecret();
  const s = await setup({ secret });
  const ghost = s.peer("Ghost", "member");
  s.conn.handlers["room.resume"] = () => {
    const snap = s.snapshot(s.aliceCard, { gap: true, events: [], keys: [] });
    snap.members.push(s.member({ ...ghost, memberProof: undefined }));
    return snap;
  };
  await s.room.resume();
  await settle();
  assert.equal(s.room.unproven, 1);
  assert.ok(!s.room.members.has(ghost.id));
  assert.ok(!keyShareRecipients(s.conn).includes(ghost.id));
  assert.ok(s.room.members.has(s.bob.id) && s.room.members.has(s.carol.id));
});

test("private room: a member whose card carries a valid member proof is admitted and gets keys", async () => {
  const secret = c.newRoomSecret();
  const s = await setup({ secret });
  const { room, conn, push, next, l } = s;
  const dana = s.peer("Dana", "member");
  push("member.joined", { seq: next(), ts: 1, member: s.member(dana) });
  // Positive outcomes are waited for (a loaded machine can take longer than `settle`).
  await until(() => room.members.has(dana.id) && l.log.joined.length > 0);
  assert.equal(room.unproven, 0);
  assert.equal(room.members.get(dana.id).pseudonym, "Dana");
  assert.deepEqual(l.log.joined.map((j) => j.memberId), [dana.id]);
  // Alice's next message carries her key to dana first, and dana reads it.
  room.send("welcome");
  await until(() => keyShareRecipients(conn).includes(dana.id) && s.sent.length === 1);
  const share = keyShares(conn).find((d) => d.to === dana.id);
  dana.crypto.addMember(s.aliceCard);
  await dana.crypto.receiveKeyShare(share.skd);
  assert.equal(dana.crypto.decrypt(s.sent[0]).text, "welcome");
});

test("resume: signs a new challenge with the key of the card the seat holds", async () => {
  const s = await setup();
  const { conn, room, roomKey, aliceCard } = s;
  conn.handlers["room.resume"] = () => s.snapshot(aliceCard, { gap: false, events: [], keys: [] });
  await room.resume();
  const data = conn.calls.find(([e]) => e === "room.resume")[1];
  const card = c.parseCard(aliceCard, roomKey);
  assert.equal(data.member_id, room.memberId);
  assert.ok(c.verifySeatProof(card.edPublic, roomKey, conn.lastNonce, card.memberId, data.seat_proof));
  assert.equal("proof" in data, false); // room.resume has no link proof field
  assert.equal(conn.calls.filter(([e]) => e === "room.challenge").length, 2);
});

test("knock: the lobby knock carries the seat proof (and the link proof in a private room)", async () => {
  const secret = c.newRoomSecret();
  const roomKey = secret.roomId;
  let knocked = null;
  const conn = new FakeConn({
    "lobby.knock": (data) => {
      knocked = data;
      return { ok: true, lobby: { room_id: c.b64id(roomKey), charter: c.makeCharter(secret, c.defaultRng(16), true) }, member_id: "x", pseudonym: "Sam" };
    },
  });
  const w = await c.Connection.prototype.knock.call(conn, { roomId: c.b64id(roomKey), secret, hostSeed: null }, "Sam");
  const card = c.parseCard(knocked.card, roomKey);
  assert.ok(c.hex(card.memberId) === c.hex(w.identity.memberId));
  assert.ok(c.verifySeatProof(card.edPublic, roomKey, conn.lastNonce, card.memberId, knocked.seat_proof));
  assert.ok(c.verifyJoinProof(secret.joinPublic, roomKey, conn.lastNonce, card.memberId, knocked.proof));
});

test("reload: a seat still held is resumed with the stored identity's seat proof, then retaken", async () => {
  const roomKey = c.defaultRng(16);
  const roomId = c.b64id(roomKey);
  const seeds = c.newSeeds();
  const held = c.Identity.fromSeeds(seeds.ed, seeds.x);
  const seat = { seeds, cardMs: 1_700_000_000_000, nickname: "Ana", memberId: c.b64id(held.memberId), token: c.defaultRng(32), admitted: false };
  let joins = 0;
  const ack = (card) => ({
    ok: true,
    room: { room_id: roomId, kind: "peer", visibility: "listed", topic: "t", epoch: 1, host_id: null, lobby: false },
    you: { ...view(seat.memberId, "Ana", "member", card), token: seat.token },
    members: [view(seat.memberId, "Ana", "member", card)],
    seq: 3,
  });
  const conn = new FakeConn({
    "room.join": (data) => (++joins === 1 ? { ok: false, error: { code: "already_member", message: "" } } : ack(data.card)),
    "room.resume": () => ({ ...ack(held.card(roomKey, seat.cardMs)), gap: false, events: [], keys: [] }),
    "room.leave": () => ({ ok: true, seq: 4 }),
  });
  const room = await c.Connection.prototype.restore.call(conn, { roomId, secret: null, hostSeed: null }, seat, listener());
  const order = conn.calls.map(([e]) => e);
  assert.deepEqual(order.slice(0, 6), ["room.challenge", "room.join", "room.challenge", "room.resume", "room.leave", "room.challenge"]);
  const resume = conn.calls.find(([e]) => e === "room.resume")[1];
  const resumeNonce = conn.nonces[1];
  assert.ok(c.verifySeatProof(held.edPublic, roomKey, resumeNonce, held.memberId, resume.seat_proof));
  assert.equal(room.memberId, seat.memberId); // the same card took the seat again
});

test("a message's sender is its signature: a relabelled push is dropped and counted", async () => {
  const { bob, carol, room, l, push, next, from } = await setup();
  const env = await from(bob, "hello from bob");
  warnings.length = 0;
  push("msg", { seq: next(), ts: 1, from: carol.id, env, stamp: new Uint8Array(32) });
  await settle();
  assert.equal(room.forged, 1);
  assert.equal(l.log.message.length, 0);
  assert.equal(l.log.undecryptable.length, 0);
  assert.equal(warnings.length, 1);
  assert.ok(!warnings[0].includes("hello"), "the warning carries no content");
  // The same envelope under its true sender opens: nothing was consumed by the forgery.
  push("msg", { seq: next(), ts: 2, from: bob.id, env, stamp: new Uint8Array(32) });
  await settle();
  assert.equal(l.log.message.length, 1);
  assert.equal(l.log.message[0].senderId, bob.id);
  assert.equal(l.log.message[0].pseudonym, "Bob");
  assert.equal(l.log.message[0].text, "hello from bob");
  assert.equal(room.seq, 3); // both pushes consumed, in order
});

test("own messages are recognised by the signed sender, never by `from`", async () => {
  const { bob, room, l, push, next, from, sent } = await setup();
  room.send("mine");
  await until(() => sent.length === 1);
  const own = sent[0];
  // Our envelope relabelled as bob's: dropped, not shown as bob's nor as undecryptable.
  push("msg", { seq: next(), ts: 1, from: bob.id, env: own, stamp: new Uint8Array(32) });
  // Bob's envelope relabelled as ours: dropped too (it is not our message).
  const env = await from(bob, "not yours");
  push("msg", { seq: next(), ts: 2, from: room.memberId, env, stamp: new Uint8Array(32) });
  await settle();
  assert.equal(room.forged, 2);
  assert.equal(l.log.message.length, 0);
  assert.equal(l.log.undecryptable.length, 0);
  // Our envelope under our own id: our own message, settled as sent, not a message from anyone.
  push("msg", { seq: next(), ts: 3, from: room.memberId, env: own, stamp: new Uint8Array(32) });
  await settle();
  assert.equal(l.log.message.length, 0);
  assert.equal(l.log.own.at(-1).state, "sent");
  assert.equal(room.forged, 2);
});

test("pins: a pin relabelled by the server is dropped; a signed one is taken", async () => {
  const { bob, carol, room, l, push, next, from } = await setup();
  const env = await from(bob, "Breathe.", { pin_id: "abcdefghijklmnop" });
  push("msg", { seq: next(), ts: 1, from: carol.id, env, stamp: new Uint8Array(32), pin: true });
  await settle();
  assert.equal(room.forged, 1);
  assert.equal(room.pinned, null);
  push("msg", { seq: next(), ts: 2, from: bob.id, env, stamp: new Uint8Array(32), pin: true });
  await settle();
  assert.equal(room.pinned?.text, "Breathe.");
  assert.equal(room.pinned?.senderId, bob.id);
  assert.equal(l.log.pinned.at(-1)[1], "new");
});

test("a pin in the join ack whose `from` differs from its signer is not shown", async () => {
  const s = await setup();
  const env = await s.from(s.bob, "Breathe.", { pin_id: "abcdefghijklmnop" });
  s.conn.handlers["room.resume"] = () =>
    s.snapshot(s.aliceCard, { gap: true, events: [], keys: [], room: { ...s.snapshot(s.aliceCard).room, pinned: { seq: 1, ts: 1, from: s.carol.id, env, stamp: new Uint8Array(32), pin: true } } });
  await s.room.resume();
  assert.equal(s.room.forged, 1);
  assert.equal(s.room.pinned, null);
});

test("member.left must move the epoch forward: a replay at the same epoch changes nothing", async () => {
  const { bob, carol, room, l, push, next, from } = await setup();
  assert.equal(room.epoch, 1);
  push("member.left", { seq: next(), ts: 1, member_id: carol.id, reason: "left", epoch: 1 });
  push("member.left", { seq: next(), ts: 2, member_id: carol.id, reason: "left" }); // no epoch
  await settle();
  assert.equal(room.staleLeft, 2);
  assert.ok(room.members.has(carol.id));
  assert.equal(room.epoch, 1);
  assert.equal(l.log.left.length, 0);
  // Messages still flow at epoch 1, so the room was not re-keyed.
  const env = await from(bob, "still here");
  push("msg", { seq: next(), ts: 3, from: bob.id, env, stamp: new Uint8Array(32) });
  await settle();
  assert.equal(l.log.message.at(-1)?.text, "still here");
  // A real departure bumps the epoch.
  push("member.left", { seq: next(), ts: 4, member_id: carol.id, reason: "left", epoch: 2 });
  await settle();
  assert.ok(!room.members.has(carol.id));
  assert.equal(room.epoch, 2);
  assert.equal(l.log.left.length, 1);
  // And a second one at that epoch (for bob) is dropped.
  push("member.left", { seq: next(), ts: 5, member_id: bob.id, reason: "removed", epoch: 2 });
  await settle();
  assert.equal(room.staleLeft, 3);
  assert.ok(room.members.has(bob.id));
  assert.equal(room.seq, 6);
});

test("a forged member.left for ourselves does not close the room", async () => {
  const { room, l, push, next } = await setup();
  push("member.left", { seq: next(), ts: 1, member_id: room.memberId, reason: "removed", epoch: 1 });
  await settle();
  assert.equal(room.closed, false);
  assert.equal(l.log.ended.length, 0);
  assert.equal(room.staleLeft, 1);
});

test("questions: signed by the asker and sealed to each host; a host refuses a relabelled one", async () => {
  const { bob, carol, room, conn, roomKey, aliceCard } = await setup();
  assert.equal(await room.ask("How do I sleep?", true), 1);
  const asked = conn.calls.find(([e]) => e === "qa.ask")[1];
  assert.equal(asked.to, bob.id);
  const alice = c.parseCard(aliceCard, roomKey);
  const q = await c.openSealedQuestion(bob.identity, roomKey, alice, asked.sealed);
  assert.deepEqual(q, { text: "How do I sleep?", consent: true });
  // The same blob named as carol's: refused.
  await assert.rejects(c.openSealedQuestion(bob.identity, roomKey, c.parseCard(carol.card, roomKey), asked.sealed));

  // Alice opening questions sealed to her: bob's own is accepted, a relabel or a forgery is not.
  const bobCard = c.parseCard(bob.card, roomKey);
  const sealed = await c.sealQuestion(bob.identity, roomKey, alice, c.questionBody("Me too?", false));
  const ok = await room.openQuestion({ room_id: room.roomId, from: bob.id, sealed });
  assert.deepEqual(ok, { from: bob.id, pseudonym: "Bob", text: "Me too?", consent: false });
  assert.equal(await room.openQuestion({ room_id: room.roomId, from: carol.id, sealed }), null);
  // Carol seals under bob's name (HPKE lets anyone do that) but cannot sign as bob.
  const forged = await c.hpkeSeal(alice.xPublic, c.questionSealInfo(roomKey, bobCard.memberId, alice.memberId), c.signQuestion(carol.identity, roomKey, alice.memberId, c.questionBody("forged", true)));
  assert.equal(await room.openQuestion({ room_id: room.roomId, from: bob.id, sealed: forged }), null);
  // The old format (bare JSON, no signature) is refused.
  const old = await c.hpkeSeal(alice.xPublic, c.questionSealInfo(roomKey, bobCard.memberId, alice.memberId), c.questionBody("unsigned question here, long enough to pass sixty-four bytes", false));
  assert.equal(await room.openQuestion({ room_id: room.roomId, from: bob.id, sealed: old }), null);
});

test("report view: every field of the reported body, text first, labelled, control characters visible", () => {
  const franked = (obj) => c.concat(new Uint8Array([1]), new Uint8Array(8), c.utf8(JSON.stringify(obj)));
  const fields = c.reportFields(franked({ cw: "violence", text: "hi", quote: { asker: "Alice", text: "slur" }, links: [{ label: "x", url: "https://e.example" }], zz: 5 }));
  assert.deepEqual(fields.map((f) => f.key), ["text", "cw", "quote", "links", "zz"]);
  assert.deepEqual(fields.map((f) => f.label), ["Text", "Content warning", "Quote", "Links", "Field “zz”"]);
  assert.equal(fields[2].value, '{"asker":"Alice","text":"slur"}');
  assert.equal(fields[4].value, "5");
  assert.equal(c.visible("a\u202eb\u200bc\nd"), "a\\u202eb\\u200bc\nd");
  assert.equal(c.reportFields(c.concat(new Uint8Array([2]), new Uint8Array(8), c.utf8("{}"))), null);
  assert.equal(c.reportFields(franked(["not", "an", "object"])), null);
  // A duplicate name would hide the first value from a lenient parser: refused, so shown raw.
  const dup = c.concat(new Uint8Array([1]), new Uint8Array(8), c.utf8('{"text":"nice","text":"abuse"}'));
  assert.equal(c.reportFields(dup), null);
});

test("a burst of envelopes on a chain nobody holds does not stall the others' messages", async () => {
  const { bob, carol, room, l, push, next, from } = await setup();
  // Carol seals twenty envelopes and never shares the key: alice sets them aside, per sender.
  const bogus = [];
  for (let i = 0; i < 20; i++) bogus.push(carol.crypto.encrypt(c.encodeText(`bogus ${i}`)));
  for (const env of bogus) push("msg", { seq: next(), ts: 1, from: carol.id, env });
  const started = Date.now();
  const env = await from(bob, "honest words");
  push("msg", { seq: next(), ts: 2, from: bob.id, env });
  await until(() => l.log.message.some((m) => m.text === "honest words"), 1000);
  assert.ok(Date.now() - started < 1000);
  assert.equal(room.seq, 22);
  assert.equal(l.log.undecryptable.length, 0);
  // When Carol's key is overdue, all twenty are shown as undecryptable at once, in her order.
  await until(() => l.log.undecryptable.length === 20, 7000);
  assert.deepEqual(new Set(l.log.undecryptable.map((u) => u.code)), new Set(["unknown_chain"]));
  assert.deepEqual(l.log.undecryptable.map((u) => u.seq), [...Array(20).keys()].map((i) => i + 2));
});

test("a held message opens when its key arrives late, and a departure waits for it", async () => {
  const { bob, carol, room, l, push, next } = await setup();
  const env = bob.crypto.encrypt(c.encodeText("late key"));
  const shares = (await bob.crypto.pendingKeyShares()).filter(([rid]) => c.hex(rid) === c.hex(room.crypto.memberId));
  push("msg", { seq: next(), ts: 1, from: bob.id, env });
  push("member.left", { seq: next(), ts: 2, member_id: carol.id, reason: "left", epoch: 2 });
  await settle();
  assert.equal(room.seq, 2); // the message is held; the departure waits for it
  assert.equal(room.crypto.epoch, 1);
  for (const [, skd] of shares) push("key", { from: bob.id, skd });
  await until(() => room.seq === 3);
  assert.deepEqual(l.log.message.map((m) => m.text), ["late key"]);
  assert.equal(room.crypto.epoch, 2);
});

test("a malformed ordered push is skipped and never wedges the stream", async () => {
  const { bob, room, l, push, next, from } = await setup();
  push("member.joined", { seq: next(), ts: 1 }); // no member
  push("member.updated", { seq: next(), ts: 1, member: null });
  const env = await from(bob, "still talking");
  push("msg", { seq: next(), ts: 2, from: bob.id, env });
  await until(() => l.log.message.length === 1);
  assert.equal(room.malformed, 2);
  assert.equal(room.seq, 4);
});

// --- charters: the host id and the lobby flag of a private room are the link key's -----------

test("private room: the view says no lobby, the charter says lobby: a member nobody admitted is not admitted", async () => {
  const secret = c.newRoomSecret();
  const s = await setup({ secret, charter: (bob) => c.makeCharter(secret, bob.identity.memberId, true), view: { lobby: false } });
  const { room, push, next, l, bob, carol } = s;
  assert.equal(room.view["lobby"], true);
  // Carol carries bob's admission: in. Alice is herself; bob is the charter's host.
  assert.ok(room.members.has(bob.id) && room.members.has(carol.id));
  // Dana holds the link (a valid member proof) but no host admitted her.
  const dana = s.peer("Dana", "member");
  push("member.joined", { seq: next(), ts: 1, member: s.member(dana) });
  // Erin's admission is signed by carol, who hosts nothing.
  const erin = s.peer("Erin", "member");
  push("member.joined", { seq: next(), ts: 2, member: { ...s.member(erin), admission: admission(carol, s.roomKey, erin.card) } });
  // Fay was admitted by bob: in.
  const fay = s.peer("Fay", "member");
  push("member.joined", { seq: next(), ts: 3, member: { ...s.member(fay), admission: admission(bob, s.roomKey, fay.card) } });
  await until(() => room.seq === 4);
  await settle();
  assert.ok(!room.members.has(dana.id));
  assert.ok(!room.members.has(erin.id));
  assert.ok(room.members.has(fay.id));
  assert.deepEqual(l.log.joined.map((j) => j.memberId), [fay.id]);
  const known = new Set(room.crypto.members().map((kc) => c.b64id(kc.memberId)));
  assert.ok(!known.has(dana.id) && !known.has(erin.id));
  assert.equal(room.seat().admitted, true); // a lobby room: the seat is an admitted card
});

test("private room: a charter without a lobby is a room without one, whatever the view says", async () => {
  const secret = c.newRoomSecret();
  const s = await setup({ secret, view: { lobby: true } });
  assert.equal(s.room.view["lobby"], false);
  const dana = s.peer("Dana", "member");
  s.push("member.joined", { seq: s.next(), ts: 1, member: s.member(dana) });
  await settle();
  assert.ok(s.room.members.has(dana.id));
  assert.equal(s.room.seat().admitted, false);
});

test("private room: a view naming a ghost as host changes nothing; the host is the charter's", async () => {
  const secret = c.newRoomSecret();
  let ghost;
  const s = await setup({
    secret,
    charter: (bob) => c.makeCharter(secret, bob.identity.memberId, true),
    view: { host_id: "AAAAAAAAAAAAAAAAAAAAAA" },
  });
  assert.equal(s.room.view["host_id"], s.bob.id);
  // A link holder the server names as host (no admission): not let in, and not the host.
  ghost = s.peer("Ghost", "member");
  s.conn.handlers["room.resume"] = () => {
    const snap = s.snapshot(s.aliceCard, { gap: true, events: [], keys: [] });
    snap.room.host_id = ghost.id;
    snap.members.push(s.member(ghost));
    return snap;
  };
  await s.room.resume();
  await settle();
  assert.equal(s.room.closed, false);
  assert.equal(s.room.view["host_id"], s.bob.id);
  assert.ok(!s.room.members.has(ghost.id));
  // Nor does a card the server labels with the host's id stand in for bob's.
  const impostor = s.peer("Impostor", "member");
  s.push("member.joined", { seq: s.next(), ts: 1, member: { ...s.member(impostor), member_id: s.bob.id } });
  const dana = s.peer("Dana", "member");
  s.push("member.joined", { seq: s.next(), ts: 2, member: { ...s.member(dana), admission: admission(impostor, s.roomKey, dana.card) } });
  await settle();
  assert.equal(c.hex(s.room.members.get(s.bob.id).card), c.hex(s.bob.card));
  assert.ok(!s.room.members.has(dana.id));
});

test("private room without a host seat: the charter names none, so the view's host is nobody", async () => {
  const secret = c.newRoomSecret();
  const s = await setup({ secret, charter: () => c.makeCharter(secret, null, false) });
  assert.equal(s.room.view["host_id"], null);
  assert.equal(s.room.view["lobby"], false);
});

test("private room: a missing or forged charter fails the join with bad_charter", async () => {
  const secret = c.newRoomSecret();
  const other = c.newRoomSecret();
  const forgeries = {
    missing: () => undefined,
    null: () => null,
    "another link's": (bob) => c.makeCharter({ ...other, roomId: secret.roomId }, bob.identity.memberId, false),
    "another room's": (bob) => c.makeCharter(other, bob.identity.memberId, false),
    "a flipped lobby flag": (bob) => {
      const ch = c.makeCharter(secret, bob.identity.memberId, true);
      ch[17] ^= 0x01;
      return ch;
    },
    truncated: (bob) => c.makeCharter(secret, bob.identity.memberId, false).slice(0, 81),
    hex: (bob) => c.hex(c.makeCharter(secret, bob.identity.memberId, false)),
  };
  for (const [what, charter] of Object.entries(forgeries)) {
    const s = await setup({ secret, charter, join: false });
    await assert.rejects(s.room.join(), (e) => e instanceof c.ChatError && e.code === "bad_charter", what);
    assert.equal(s.room.crypto, null, what); // nothing of the room was taken in
    assert.equal(s.room.members.size, 0, what);
    await settle();
    assert.ok(s.conn.calls.some(([e]) => e === "room.leave"), `${what}: the seat is given back`);
  }
  assert.equal(c.describeError("bad_charter"), "This room's host could not be verified. Ask for a new link.");
  // The same through Connection.join: the room is not kept.
  const s = await setup({ secret, charter: () => undefined, join: false });
  await assert.rejects(c.Connection.prototype.join.call(s.conn, { roomId: s.roomId, secret, hostSeed: null }, "Alice", listener()), /host could not be verified/);
  assert.equal(s.conn.rooms.has(s.roomId), false);
});

test("private room: a resume whose charter is missing or differs from the first closes the room", async () => {
  const secret = c.newRoomSecret();
  for (const swap of [undefined, "other-host", "no-lobby"]) {
    const s = await setup({ secret, charter: (bob) => c.makeCharter(secret, bob.identity.memberId, true) });
    s.conn.handlers["room.resume"] = () => {
      const snap = s.snapshot(s.aliceCard, { gap: false, events: [], keys: [] });
      // A link holder could sign another charter; the one the room was created with is pinned.
      if (swap === undefined) delete snap.room.charter;
      else if (swap === "other-host") snap.room.charter = c.makeCharter(secret, s.carol.identity.memberId, true);
      else snap.room.charter = c.makeCharter(secret, s.bob.identity.memberId, false);
      return snap;
    };
    await s.room.resume();
    assert.equal(s.room.closed, true, String(swap));
    assert.deepEqual(s.l.log.ended, ["bad_charter"]);
    assert.ok(s.conn.calls.some(([e]) => e === "room.leave"));
  }
});

test("listed rooms carry no charter: the view's host and lobby are taken as they are", async () => {
  const s = await setup({ view: { lobby: true } });
  assert.equal(s.room.view["host_id"], s.bob.id);
  assert.equal(s.room.view["lobby"], true);
  assert.ok(s.room.members.has(s.carol.id)); // bob admitted her
});

test("knock: the waiting room's host is the charter's; a missing or forged charter refuses the knock", async () => {
  const secret = c.newRoomSecret();
  const roomId = c.b64id(secret.roomId);
  const host = c.defaultRng(16);
  let lobby = { room_id: roomId, host_id: "AAAAAAAAAAAAAAAAAAAAAA", lobby: false, charter: c.makeCharter(secret, host, true) };
  const conn = new FakeConn({ "lobby.knock": () => ({ ok: true, lobby, member_id: "x", pseudonym: "Sam" }) });
  const link = { roomId, secret, hostSeed: null };
  const w = await c.Connection.prototype.knock.call(conn, link, "Sam");
  assert.equal(w.info.host_id, c.b64id(host));
  assert.equal(w.info.lobby, true);
  for (const charter of [undefined, c.makeCharter(c.newRoomSecret(), host, true)]) {
    lobby = { room_id: roomId, host_id: c.b64id(host), charter };
    await assert.rejects(c.Connection.prototype.knock.call(conn, link, "Sam"), (e) => e instanceof c.ChatError && e.code === "bad_charter");
    assert.equal(conn.waiters.has(roomId), false);
  }
});

test("createRoom: a private room sends the charter (the host seat, no lobby); a listed one none", async () => {
  const conn = new FakeConn({ "room.create": (data) => ({ ok: true, room: { room_id: data.room_id ?? "AAAAAAAAAAAAAAAAAAAAAA" } }) });
  const { link } = await c.Connection.prototype.createRoom.call(conn, { listed: false, title: "x" });
  const data = conn.calls.find(([e]) => e === "room.create")[1];
  const opened = c.openCharter(link.secret.joinPublic, link.secret.roomId, data.charter);
  assert.equal(c.b64id(opened.hostId), data.host_id);
  assert.equal(opened.lobby, false);
  const host = c.Identity.fromSeeds(link.hostSeed.slice(0, 32), link.hostSeed.slice(32));
  assert.equal(c.b64id(host.memberId), data.host_id);
  await c.Connection.prototype.createRoom.call(conn, { listed: true, topic: "t" });
  assert.equal("charter" in conn.calls.filter(([e]) => e === "room.create")[1][1], false);
});

// --- roles: a moderator or co-host only with a statement signed by a trusted host ---------------

/** `signer`'s statement that `p` holds `role` in the room (as RoomSession.setRole makes it). */
const statement = (signer, roomKey, p, role, issued = Date.now()) => c.signRole(signer.identity, roomKey, p.identity.memberId, role, issued);
const QUOTE = { quote: { text: "How do I sleep?", asker: "Ana" } };

test("roles: a view labelling carol host without a statement leaves her a member: no quote, no admissions, no questions", async () => {
  const s = await setup({ view: { lobby: true } });
  const { room, push, next, l, bob, carol, roomKey, conn } = s;
  warnings.length = 0;
  const dana = s.peer("Dana", "member");
  dana.admission = admission(carol, roomKey, dana.card); // "admitted" by carol, who hosts nothing
  conn.handlers["room.resume"] = () => {
    const snap = s.snapshot(s.aliceCard, { gap: true, events: [], keys: [] });
    snap.members = [snap.members[0], { ...snap.members[1], role: "host" }, s.member(dana), snap.members[2]];
    return snap;
  };
  await room.resume();
  await settle();
  assert.equal(room.trustedRole(bob.id), "host"); // the owner needs no statement
  assert.equal(room.members.get(carol.id).claimedRole, "host");
  assert.equal(room.trustedRole(carol.id), "member");
  assert.equal(room.members.get(carol.id).role, "member");
  assert.ok(!room.members.has(dana.id));
  assert.equal(room.unprovenRoles, 1);
  // Her admissions do not count on a member.joined either; bob's do.
  const erin = s.peer("Erin", "member");
  push("member.joined", { seq: next(), ts: 1, member: { ...s.member(erin), admission: admission(carol, roomKey, erin.card) } });
  const fay = s.peer("Fay", "member");
  push("member.joined", { seq: next(), ts: 2, member: { ...s.member(fay), admission: admission(bob, roomKey, fay.card) } });
  // A later update keeps claiming it (now as moderator, with a statement that is no bytes).
  push("member.updated", { seq: next(), ts: 3, member: { ...s.member(carol), role: "moderator", role_proof: c.hex(statement(bob, roomKey, carol, "moderator")) } });
  await until(() => room.seq === 4);
  assert.ok(!room.members.has(erin.id));
  assert.ok(room.members.has(fay.id));
  assert.equal(room.trustedRole(carol.id), "member");
  assert.equal(room.unprovenRoles, 2);
  // Her quote is not rendered; bob's is.
  const env = await s.from(carol, "That is normal.", QUOTE);
  push("msg", { seq: next(), ts: 4, from: carol.id, env });
  const envBob = await s.from(bob, "Try this.", QUOTE);
  push("msg", { seq: next(), ts: 5, from: bob.id, env: envBob });
  await until(() => l.log.message.length === 2);
  const [mc, mb] = l.log.message;
  assert.equal(mc.senderId, carol.id);
  assert.deepEqual(mc.extra.quote, QUOTE.quote); // the body carries it…
  assert.equal(c.quoteBlock(mc.extra, room.trustedRole(mc.senderId)), null); // …but it is not shown
  assert.notEqual(c.quoteBlock(mb.extra, room.trustedRole(mb.senderId)), null);
  // Questions are sealed to bob only; the console lets a moderator act on her like a member.
  assert.equal(await room.ask("Is this normal?", false), 1);
  assert.deepEqual(conn.calls.filter(([e]) => e === "qa.ask").map(([, d]) => d.to), [bob.id]);
  assert.equal(room.members.get(carol.id).role, "member");
  assert.equal(c.mayActOn({ role: "moderator", memberId: room.memberId, view: room.view }, carol.id, room.members.get(carol.id)), true);
  assert.equal(warnings.length, 2);
  for (const w of warnings) assert.ok(!w.includes("Carol") && !w.includes(carol.id), "the warning names nobody");
});

test("roles: a statement signed by anyone but a trusted host, or for another member, role or room, is refused", async () => {
  const s = await setup();
  const { room, push, next, bob, carol, roomKey } = s;
  warnings.length = 0;
  const cases = [];
  const add = (name, role, proof) => {
    const p = s.peer(name, "member");
    const made = proof(p);
    cases.push(p);
    push("member.joined", { seq: next(), ts: cases.length, member: { ...s.member(p), role, role_proof: made } });
  };
  add("ByCarol", "host", (p) => statement(carol, roomKey, p, "host")); // carol hosts nothing
  add("Self", "moderator", (p) => statement(p, roomKey, p, "moderator")); // self-signed
  add("WrongRole", "host", (p) => statement(bob, roomKey, p, "moderator"));
  add("WrongMember", "host", () => statement(bob, roomKey, carol, "host"));
  add("WrongRoom", "host", (p) => statement(bob, c.defaultRng(16), p, "host"));
  add("Stranger", "host", (p) => statement({ identity: c.Identity.generate() }, roomKey, p, "host"));
  // Signed with carol's key but naming bob as the signer.
  add("Relabelled", "host", (p) => c.concat(bob.identity.memberId, statement(carol, roomKey, p, "host").subarray(16)));
  add("Short", "host", (p) => statement(bob, roomKey, p, "host").subarray(0, 87));
  add("Missing", "moderator", () => null);
  add("Unknown", "owner", (p) => statement(bob, roomKey, p, "host"));
  await until(() => room.seq === 1 + cases.length);
  for (const p of cases) {
    assert.ok(room.members.has(p.id), p.name); // a member like any other…
    assert.equal(room.trustedRole(p.id), "member", p.name); // …and no more
  }
  assert.equal(room.unprovenRoles, cases.length);
  // A statement by a member the server only labels host: refused too.
  push("member.updated", { seq: next(), ts: 20, member: { ...s.member(carol), role: "host" } });
  const dave = s.peer("Dave", "member");
  push("member.joined", { seq: next(), ts: 21, member: { ...s.member(dave), role: "moderator", role_proof: statement(carol, roomKey, dave, "moderator") } });
  await until(() => room.seq === 3 + cases.length);
  assert.equal(room.trustedRole(carol.id), "member");
  assert.equal(room.trustedRole(dave.id), "member");
  assert.equal(room.unprovenRoles, cases.length + 2);
  // A card the server labels with bob's id, and a statement from it: bob's card is the one we hold.
  const impostor = s.peer("Impostor", "member");
  const erin = s.peer("Erin", "member");
  push("member.joined", { seq: next(), ts: 22, member: { ...s.member(erin), role: "host", role_proof: c.concat(bob.identity.memberId, statement(impostor, roomKey, erin, "host").subarray(16)) } });
  await until(() => room.seq === 4 + cases.length);
  assert.equal(room.trustedRole(erin.id), "member");
  assert.equal(room.trustedRole(bob.id), "host");
  for (const w of warnings) assert.ok(!cases.some((p) => w.includes(p.name) || w.includes(p.id)), "the warning names nobody");
});

test("roles: bob (the owner) makes carol co-host; carol's admissions, quotes and statements then count", async () => {
  const s = await setup({ view: { lobby: true } });
  const { room, push, next, l, bob, carol, roomKey, conn } = s;
  warnings.length = 0;
  push("member.updated", { seq: next(), ts: 1, member: { ...s.member(carol), role: "host", role_proof: statement(bob, roomKey, carol, "host") } });
  await until(() => room.seq === 2);
  assert.equal(room.trustedRole(carol.id), "host");
  // Carol vouches for dave (moderator) and admits erin; both count.
  const dave = s.peer("Dave", "member");
  dave.admission = admission(carol, roomKey, dave.card);
  push("member.joined", { seq: next(), ts: 2, member: { ...s.member(dave), role: "moderator", role_proof: statement(carol, roomKey, dave, "moderator") } });
  const erin = s.peer("Erin", "member");
  push("member.joined", { seq: next(), ts: 3, member: { ...s.member(erin), admission: admission(carol, roomKey, erin.card) } });
  await until(() => room.seq === 4);
  assert.ok(room.members.has(dave.id) && room.members.has(erin.id));
  assert.equal(room.trustedRole(dave.id), "moderator");
  assert.equal(room.trustedRole(erin.id), "member");
  assert.deepEqual(l.log.joined.map((j) => [j.memberId, j.role]), [[dave.id, "moderator"], [erin.id, "member"]]);
  // Her quote is rendered; questions go to both hosts.
  const env = await s.from(carol, "Rest helps.", QUOTE);
  push("msg", { seq: next(), ts: 4, from: carol.id, env });
  await until(() => l.log.message.length === 1);
  assert.notEqual(c.quoteBlock(l.log.message[0].extra, room.trustedRole(carol.id)), null);
  assert.equal(await room.ask("And naps?", true), 2);
  assert.deepEqual(new Set(conn.calls.filter(([e]) => e === "qa.ask").map(([, d]) => d.to)), new Set([bob.id, carol.id]));
  assert.equal(room.unprovenRoles, 0);
  assert.equal(warnings.length, 0);

  // A snapshot in which the vouched-for come first: resolved in rounds (carol after bob, dave and
  // frank after carol; erin and dave admitted once carol is trusted).
  const frank = s.peer("Frank", "member");
  frank.admission = admission(bob, roomKey, frank.card);
  conn.handlers["room.resume"] = () => {
    const snap = s.snapshot(s.aliceCard, { gap: true, events: [], keys: [] });
    const [vBob, vCarol, vAlice] = snap.members;
    snap.members = [
      { ...s.member(frank), role: "host", role_proof: statement(dave, roomKey, frank, "host") }, // dave is a moderator: refused
      { ...s.member(dave), role: "moderator", role_proof: statement(carol, roomKey, dave, "moderator") },
      s.member(erin),
      { ...vCarol, role: "host", role_proof: statement(bob, roomKey, carol, "host") },
      vAlice,
      vBob,
    ];
    return snap;
  };
  await room.resume();
  await settle();
  assert.equal(room.trustedRole(bob.id), "host");
  assert.equal(room.trustedRole(carol.id), "host");
  assert.equal(room.trustedRole(dave.id), "moderator");
  assert.equal(room.trustedRole(erin.id), "member");
  assert.ok(room.members.has(erin.id) && room.members.has(dave.id));
  assert.equal(room.trustedRole(frank.id), "member");
  assert.equal(room.unprovenRoles, 1);
  // A snapshot without carol's statement: she, and those she vouched for, are members again.
  conn.handlers["room.resume"] = () => {
    const snap = s.snapshot(s.aliceCard, { gap: true, events: [], keys: [] });
    snap.members.push({ ...s.member(dave), role: "moderator", role_proof: statement(carol, roomKey, dave, "moderator"), admission: admission(bob, roomKey, dave.card) });
    snap.members[1] = { ...snap.members[1], role: "host" };
    return snap;
  };
  await room.resume();
  await settle();
  assert.equal(room.trustedRole(carol.id), "member");
  assert.equal(room.trustedRole(dave.id), "member");
  assert.equal(room.unprovenRoles, 3);
  // A demotion needs no statement.
  push("member.updated", { seq: next(), ts: 9, member: { ...s.member(carol), role: "member" } });
  await until(() => room.seq === 6);
  assert.equal(room.trustedRole(carol.id), "member");
  assert.equal(room.unprovenRoles, 3);
});

test("roles: a co-host chain in the join snapshot, in any order, and a co-host vouching for another", async () => {
  const s = await setup({ join: false });
  const { room, bob, carol, roomKey, conn } = s;
  const dave = s.peer("Dave", "member");
  const erin = s.peer("Erin", "member");
  conn.handlers["room.join"] = (data) => {
    const snap = s.snapshot(data.card);
    const [vBob, vCarol, vAlice] = snap.members;
    snap.members = [
      { ...s.member(erin), role: "moderator", role_proof: statement(dave, roomKey, erin, "moderator") },
      { ...s.member(dave), role: "host", role_proof: statement(carol, roomKey, dave, "host") },
      { ...vCarol, role: "host", role_proof: statement(bob, roomKey, carol, "host") },
      vAlice,
      vBob,
    ];
    return snap;
  };
  await room.join();
  assert.deepEqual([bob, carol, dave, erin].map((p) => room.trustedRole(p.id)), ["host", "host", "host", "moderator"]);
  assert.equal(room.unprovenRoles, 0);
});

test("roles: member.role carries our statement for exactly that member and role", async () => {
  const s = await setup();
  const { room, conn, carol, roomKey, aliceCard } = s;
  const before = Date.now();
  await room.setRole(carol.id, "moderator");
  await room.control("member.role", { member_id: carol.id, role: "host" });
  const calls = conn.calls.filter(([e]) => e === "member.role").map(([, d]) => d);
  assert.equal(calls.length, 2);
  const alice = c.parseCard(aliceCard, roomKey);
  for (const [d, role] of [[calls[0], "moderator"], [calls[1], "host"]]) {
    assert.equal(d.room_id, room.roomId);
    assert.equal(d.member_id, carol.id);
    assert.equal(d.role, role);
    assert.ok(d.role_proof instanceof Uint8Array && d.role_proof.length === 88);
    assert.equal(c.b64id(c.roleSigner(d.role_proof)), room.memberId);
    assert.ok(c.verifyRole(alice.edPublic, roomKey, carol.identity.memberId, role, d.role_proof));
    assert.ok(!c.verifyRole(alice.edPublic, roomKey, carol.identity.memberId, role === "host" ? "moderator" : "host", d.role_proof));
    const issued = c.readU64(d.role_proof, 16);
    assert.ok(issued >= before && issued <= Date.now());
  }
});

test("a removed member handed back with the old card and admission is not admitted again", async () => {
  const { carol, room, push, next } = await setup();
  push("member.left", { seq: next(), ts: 1, member_id: carol.id, reason: "removed", epoch: 2 });
  await settle();
  assert.ok(!room.members.has(carol.id));
  // The server re-announces her with exactly what she had: her card (and any old admission).
  push("member.joined", { seq: next(), ts: 2, member: view(carol.id, "Carol", "member", carol.card) });
  await settle();
  assert.ok(!room.members.has(carol.id));
  assert.equal(room.returned, 1);
  assert.equal((await room.crypto.pendingKeyShares()).filter(([rid]) => c.b64id(rid) === carol.id).length, 0);
  // Someone who only left (not removed) may come back, as readmission allows.
  const { bob: bob2, carol: carol2, room: room2, push: push2, next: next2 } = await setup();
  push2("member.left", { seq: next2(), ts: 1, member_id: carol2.id, reason: "left", epoch: 2 });
  await settle();
  push2("member.joined", { seq: next2(), ts: 2, member: view(carol2.id, "Carol", "member", carol2.card) });
  await until(() => room2.members.has(carol2.id));
  assert.ok(room2.members.has(bob2.id));
  assert.equal(room2.returned, 0);
});

test("our own seat lapsing is told apart from the room ending: expired and disconnected become seat_lapsed", async () => {
  for (const [reason, shown] of [["expired", "seat_lapsed"], ["disconnected", "seat_lapsed"], ["removed", "removed"], ["left", "left"]]) {
    const { room, push, next, l } = await setup();
    push("member.left", { seq: next(), ts: 1, member_id: room.memberId, reason, epoch: 2 });
    await until(() => l.log.ended.length === 1);
    assert.deepEqual(l.log.ended, [shown], reason);
    assert.ok(room.closed);
  }
});
