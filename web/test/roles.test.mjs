// Role statements (src/e2ee/roles.ts, mirrors chatserver/e2ee/roles.py): the `role` vector of
// tests/vectors/project.json (bob signs alice as "host"), reproduced byte for byte from bob's
// seeds, and refused when any input changes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bundle, projectVectors } from "../test-support/bundle.mjs";

const e = await bundle("roles", ["index.ts", "roles.ts"]);

const { V, H, hex, ROOM, identity, ids } = await projectVectors(e);
const who = (name) => ids[name];
const R = V.role;
const bob = identity(R.signer);
const alice = identity(R.member);
const MEMBER = alice.memberId;
const PROOF = H(R.proof);

test("role vector: message and proof reproduce byte for byte", () => {
  assert.equal(hex(bob.memberId), who("bob").member_id);
  assert.equal(hex(bob.edPublic), who("bob").ed_public);
  assert.equal(hex(MEMBER), who("alice").member_id);
  assert.equal(R.role, "host");
  assert.equal(hex(e.roleMessage(ROOM, MEMBER, R.role, R.issued_ms, bob.memberId)), R.signed);
  assert.ok(R.signed.startsWith(hex(e.ds("role")) + V.room.room_id + who("alice").member_id + "02"));
  const proof = e.signRole(bob, ROOM, MEMBER, R.role, R.issued_ms);
  assert.equal(proof.length, 88);
  assert.equal(hex(proof), R.proof);
  assert.equal(hex(e.roleSigner(PROOF)), who("bob").member_id);
  assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, R.role, PROOF), true);
  assert.deepEqual(e.ROLE_CODES, { member: 0, moderator: 1, host: 2 });
});

test("role statement: refused for another member, role, room or signer key", () => {
  const other = MEMBER.slice();
  other[0] ^= 1;
  assert.equal(e.verifyRole(bob.edPublic, ROOM, other, R.role, PROOF), false);
  assert.equal(e.verifyRole(bob.edPublic, ROOM, bob.memberId, R.role, PROOF), false);
  for (const role of ["moderator", "member", "therapist", "", "HOST"]) {
    assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, role, PROOF), false, role);
  }
  const room = ROOM.slice();
  room[15] ^= 0x80;
  assert.equal(e.verifyRole(bob.edPublic, room, MEMBER, R.role, PROOF), false);
  // Alice's key (or anyone's but bob's) does not verify bob's statement.
  assert.equal(e.verifyRole(alice.edPublic, ROOM, MEMBER, R.role, PROOF), false);
  assert.equal(e.verifyRole(e.Identity.generate().edPublic, ROOM, MEMBER, R.role, PROOF), false);
  // A statement by alice relabelled with bob's id as signer: the signer id is signed too.
  const byAlice = e.signRole(alice, ROOM, MEMBER, R.role, R.issued_ms);
  const relabelled = e.concat(bob.memberId, byAlice.subarray(16));
  assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, R.role, relabelled), false);
  assert.equal(e.verifyRole(alice.edPublic, ROOM, MEMBER, R.role, relabelled), false);
  // Another issued_ms than the one signed; a flipped signature byte.
  const later = PROOF.slice();
  later[23] ^= 1;
  assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, R.role, later), false);
  const flipped = PROOF.slice();
  flipped[40] ^= 1;
  assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, R.role, flipped), false);
  // Each role verifies only as itself.
  for (const role of ["member", "moderator", "host"]) {
    const p = e.signRole(bob, ROOM, MEMBER, role, 5);
    for (const asked of ["member", "moderator", "host"]) assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, asked, p), asked === role);
  }
});

test("role statement: issued_ms at or above 2^53 is refused", () => {
  const big = e.concat(bob.memberId, new Uint8Array([0, 0x20, 0, 0, 0, 0, 0, 0]));
  const msg = e.concat(e.ds("role"), ROOM, MEMBER, new Uint8Array([2]), big.subarray(16), bob.memberId);
  const proof = e.concat(big, bob.sign(msg)); // a genuine signature over issued_ms = 2^53
  assert.equal(proof.length, 88);
  assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, "host", proof), false);
  const max = e.concat(bob.memberId, new Uint8Array(8).fill(0xff));
  const msgMax = e.concat(e.ds("role"), ROOM, MEMBER, new Uint8Array([2]), max.subarray(16), bob.memberId);
  assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, "host", e.concat(max, bob.sign(msgMax))), false);
  // Just below is fine.
  const edge = e.signRole(bob, ROOM, MEMBER, "host", 2 ** 53 - 1);
  assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, "host", edge), true);
  assert.throws(() => e.signRole(bob, ROOM, MEMBER, "host", 2 ** 53), (err) => err instanceof e.E2EEError);
  assert.throws(() => e.signRole(bob, ROOM, MEMBER, "host", -1), (err) => err instanceof e.E2EEError);
  assert.throws(() => e.signRole(bob, ROOM, MEMBER, "host", 1.5), (err) => err instanceof e.E2EEError);
  assert.throws(() => e.signRole(bob, ROOM, MEMBER, "owner", 1), (err) => err instanceof e.E2EEError);
  assert.throws(() => e.signRole(bob, ROOM.slice(0, 15), MEMBER, "host", 1), (err) => err instanceof e.E2EEError);
  assert.throws(() => e.signRole(bob, ROOM, MEMBER.slice(0, 15), "host", 1), (err) => err instanceof e.E2EEError);
});

test("role statement: short, long or non-bytes proofs are false (and no signer), never a throw", () => {
  for (const bad of [PROOF.slice(0, 87), new Uint8Array(89), e.concat(PROOF, new Uint8Array(1)), new Uint8Array(0), new Uint8Array(88)]) {
    assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, R.role, bad), false);
  }
  for (const bad of [null, undefined, R.proof, [...PROOF], { length: 88 }, 7, PROOF.buffer, new Uint16Array(44)]) {
    assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, R.role, bad), false);
    assert.equal(e.roleSigner(bad), null);
  }
  assert.equal(e.roleSigner(PROOF.slice(0, 87)), null);
  assert.equal(e.verifyRole(bob.edPublic, ROOM.slice(0, 15), MEMBER, R.role, PROOF), false);
  assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER.slice(0, 15), R.role, PROOF), false);
  assert.equal(e.verifyRole(bob.edPublic.slice(0, 31), ROOM, MEMBER, R.role, PROOF), false);
  assert.equal(e.verifyRole(null, ROOM, MEMBER, R.role, PROOF), false);
  assert.equal(e.verifyRole(bob.edPublic, null, MEMBER, R.role, PROOF), false);
  assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, null, PROOF), false);
  assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, "constructor", PROOF), false);
  // A proof that is a view into a larger buffer still verifies (offsets are honoured).
  const padded = e.concat(new Uint8Array(5), PROOF, new Uint8Array(3));
  assert.equal(e.verifyRole(bob.edPublic, ROOM, MEMBER, R.role, padded.subarray(5, 93)), true);
});
