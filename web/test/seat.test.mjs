// Seat proofs (src/e2ee/seat.ts, mirrors chatserver/e2ee/seat.py): the `seat` vector of
// tests/vectors/project.json, reproduced byte for byte from alice's seeds, and refused when any
// input changes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bundle, projectVectors } from "../test-support/bundle.mjs";

const e = await bundle("seat", ["index.ts", "seat.ts"]);

const { V, H, hex, ids, identity, ROOM } = await projectVectors(e);
const S = V.seat;

test("seat vector: message and proof reproduce byte for byte", () => {
  const alice = identity("alice");
  assert.equal(hex(alice.memberId), S.member_id);
  assert.equal(hex(alice.edPublic), S.ed_public);
  assert.equal(hex(e.seatMessage(ROOM, H(S.nonce), H(S.member_id))), S.signed);
  assert.equal(hex(e.signSeat(alice, ROOM, H(S.nonce))), S.proof);
  assert.ok(e.verifySeatProof(H(S.ed_public), ROOM, H(S.nonce), H(S.member_id), H(S.proof)));
});

test("seat proof: DS(seat), not DS(join): a link proof is no seat proof", () => {
  assert.equal(hex(e.ds("seat")), "63686174656e762f763120736561" + "7400");
  assert.ok(S.signed.startsWith(hex(e.ds("seat")) + V.room.room_id + S.nonce));
  const rs = e.deriveRoomSecret(H(V.room.secret));
  const join = e.signJoin(rs, H(S.nonce), H(S.member_id));
  assert.ok(!e.verifySeatProof(H(S.ed_public), ROOM, H(S.nonce), H(S.member_id), join));
});

test("seat proof: refused for another key, room, nonce, member or a bad length", () => {
  const ok = (pub, room, nonce, mid, proof) => e.verifySeatProof(H(pub), H(room), H(nonce), H(mid), H(proof));
  const flip = (h, i = 0) => h.slice(0, 2 * i) + ((parseInt(h.slice(2 * i, 2 * i + 2), 16) ^ 1).toString(16).padStart(2, "0")) + h.slice(2 * i + 2);
  assert.ok(ok(S.ed_public, V.room.room_id, S.nonce, S.member_id, S.proof));
  assert.ok(!ok(ids.bob.ed_public, V.room.room_id, S.nonce, S.member_id, S.proof));
  assert.ok(!ok(S.ed_public, flip(V.room.room_id), S.nonce, S.member_id, S.proof));
  assert.ok(!ok(S.ed_public, V.room.room_id, flip(S.nonce), S.member_id, S.proof));
  assert.ok(!ok(S.ed_public, V.room.room_id, S.nonce, ids.bob.member_id, S.proof));
  assert.ok(!ok(S.ed_public, V.room.room_id, S.nonce, S.member_id, flip(S.proof, 5)));
  assert.ok(!ok(S.ed_public, V.room.room_id, S.nonce, S.member_id, S.proof.slice(2)));
  assert.ok(!ok(S.ed_public, V.room.room_id, "11".repeat(15), S.member_id, S.proof));
  assert.ok(!ok(S.ed_public, V.room.room_id.slice(2), S.nonce, S.member_id, S.proof));
  assert.ok(!ok("00".repeat(32), V.room.room_id, S.nonce, S.member_id, S.proof));
});

test("seat proof: a 32-byte server nonce signs and verifies; short or long nonces are refused", () => {
  const alice = identity("alice");
  const nonce = new Uint8Array(32).fill(0x5a);
  const proof = e.signSeat(alice, ROOM, nonce);
  assert.equal(proof.length, 64);
  assert.ok(e.verifySeatProof(alice.edPublic, ROOM, nonce, alice.memberId, proof));
  assert.throws(() => e.signSeat(alice, ROOM, new Uint8Array(15)), (err) => err.code === "bad_length");
  assert.throws(() => e.signSeat(alice, ROOM, new Uint8Array(65)), (err) => err.code === "bad_length");
  assert.throws(() => e.signSeat(alice, ROOM.slice(1), nonce), (err) => err.code === "bad_length");
});
