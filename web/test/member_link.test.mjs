// Member link proofs (src/e2ee/member_link.ts, mirrors RoomSecret.sign_member and
// verify_member_link_proof in chatserver/e2ee/room_secret.py): the `room.member_link` vector of
// tests/vectors/project.json, reproduced byte for byte from the room secret, and refused when any
// input changes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bundle, projectVectors } from "../test-support/bundle.mjs";

const e = await bundle("member_link", ["index.ts", "member_link.ts"]);

const { V, H, hex, rs, ROOM } = await projectVectors(e);
const M = V.room.member_link;
const MEMBER = H(M.member_id);
const PROOF = H(M.proof);

test("member link vector: message and proof reproduce byte for byte", () => {
  assert.equal(hex(rs.roomId), V.room.room_id);
  assert.equal(hex(rs.joinPublic), V.room.join_public);
  assert.equal(hex(e.memberLinkMessage(ROOM, MEMBER)), M.signed);
  assert.ok(M.signed.startsWith(hex(e.ds("link-member")) + V.room.room_id + M.member_id));
  assert.equal(hex(e.signMember(rs, MEMBER)), M.proof);
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic, ROOM, MEMBER, PROOF), true);
});

test("member link proof: refused for another member, room or key", () => {
  const other = MEMBER.slice();
  other[0] ^= 1;
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic, ROOM, other, PROOF), false);
  const room = ROOM.slice();
  room[15] ^= 0x80;
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic, room, MEMBER, PROOF), false);
  const stranger = e.newRoomSecret();
  assert.equal(e.verifyMemberLinkProof(stranger.joinPublic, ROOM, MEMBER, PROOF), false);
  // Another link's key signs for the same ids: not this room's proof.
  const foreign = e.signMember({ ...stranger, roomId: ROOM }, MEMBER);
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic, ROOM, MEMBER, foreign), false);
  const flipped = PROOF.slice();
  flipped[10] ^= 1;
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic, ROOM, MEMBER, flipped), false);
});

test("member link proof: bad inputs are false, never a throw", () => {
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic, ROOM, MEMBER, PROOF.slice(0, 63)), false);
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic, ROOM, MEMBER, new Uint8Array(65)), false);
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic, ROOM, MEMBER, new Uint8Array(64)), false);
  for (const bad of [null, undefined, M.proof, [...PROOF], { length: 64 }, 7, PROOF.buffer]) {
    assert.equal(e.verifyMemberLinkProof(rs.joinPublic, ROOM, MEMBER, bad), false);
  }
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic, ROOM.slice(0, 15), MEMBER, PROOF), false);
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic, ROOM, MEMBER.slice(0, 15), PROOF), false);
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic.slice(0, 31), ROOM, MEMBER, PROOF), false);
  assert.equal(e.verifyMemberLinkProof(null, ROOM, MEMBER, PROOF), false);
});

test("member link proof: DS(link-member), so a join proof or a seat-style signature is no member proof", () => {
  const join = e.signJoin(rs, H(V.room.join.nonce), MEMBER);
  assert.equal(e.verifyMemberLinkProof(rs.joinPublic, ROOM, MEMBER, join), false);
  assert.ok(!e.verifyJoinProof(rs.joinPublic, ROOM, H(V.room.join.nonce), MEMBER, PROOF));
  assert.throws(() => e.signMember(rs, MEMBER.slice(0, 15)), (err) => err.code === "bad_length");
});
