// Room charters (src/e2ee/charter.ts, mirrors make_charter and open_charter in
// chatserver/e2ee/charter.py): the `room.charter` vectors of tests/vectors/project.json reproduced
// byte for byte from the room secret, and every altered or malformed charter refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bundle, projectVectors } from "../test-support/bundle.mjs";

const e = await bundle("charter", ["index.ts", "charter.ts"]);

const { V, H, hex, rs, ROOM } = await projectVectors(e);
const C = V.room.charter;
const HOST = H(C.host_id);
const WITH_HOST = H(C.charter);
const NO_HOST = H(C.no_host);

const refused = (charter, code, joinPublic = rs.joinPublic, roomId = ROOM) =>
  assert.throws(() => e.openCharter(joinPublic, roomId, charter), (err) => err instanceof e.E2EEError && (code === undefined || err.code === code));

/** A charter body signed with the link key as it is: to show a refusal is not the signature's. */
const resign = (body, roomId = ROOM) => e.concat(body, e.ed25519Sign(rs.joinSeed, e.charterMessage(roomId, body)));

test("charter vectors: both reproduce byte for byte and open to their host and lobby", () => {
  assert.equal(hex(rs.roomId), V.room.room_id);
  assert.equal(hex(rs.joinPublic), V.room.join_public);
  assert.equal(C.lobby, true);
  assert.equal(hex(e.makeCharter(rs, HOST, true)), C.charter);
  assert.equal(hex(e.makeCharter(rs, null, false)), C.no_host);
  assert.equal(WITH_HOST.length, 82);
  assert.equal(NO_HOST.length, 82);
  // The layout: version, host id, flags (lobby | has host), then the signature.
  assert.equal(WITH_HOST[0], 1);
  assert.equal(hex(WITH_HOST.slice(1, 17)), C.host_id);
  assert.equal(WITH_HOST[17], 0x03);
  assert.equal(NO_HOST[17], 0x00);
  assert.equal(hex(e.charterMessage(ROOM, WITH_HOST.slice(0, 18))), hex(e.ds("charter")) + V.room.room_id + C.charter.slice(0, 36));
  const opened = e.openCharter(rs.joinPublic, ROOM, WITH_HOST);
  assert.equal(hex(opened.hostId), C.host_id);
  assert.equal(opened.lobby, true);
  assert.deepEqual(e.openCharter(rs.joinPublic, ROOM, NO_HOST), { hostId: null, lobby: false });
});

test("charter: the other flag combinations round-trip", () => {
  const a = e.openCharter(rs.joinPublic, ROOM, e.makeCharter(rs, HOST, false));
  assert.equal(hex(a.hostId), C.host_id);
  assert.equal(a.lobby, false);
  assert.deepEqual(e.openCharter(rs.joinPublic, ROOM, e.makeCharter(rs, null, true)), { hostId: null, lobby: true });
  assert.throws(() => e.makeCharter(rs, HOST.slice(0, 15), true), e.E2EEError);
});

test("charter: refused for another room or another link's key", () => {
  const room = ROOM.slice();
  room[0] ^= 1;
  refused(WITH_HOST, "bad_signature", rs.joinPublic, room);
  const other = e.newRoomSecret();
  refused(WITH_HOST, "bad_signature", other.joinPublic);
  refused(NO_HOST, "bad_signature", other.joinPublic);
  // Signed by another link for this room id: still not this link's charter.
  refused(e.makeCharter({ ...other, roomId: ROOM }, HOST, true), "bad_signature");
});

test("charter: a flipped flag, host byte or signature bit is refused", () => {
  for (const flip of [0x01, 0x02]) {
    const bad = WITH_HOST.slice();
    bad[17] ^= flip;
    refused(bad, flip === 0x02 ? undefined : "bad_signature"); // dropping has-host also leaves a non-zero host
  }
  const lobbyOn = NO_HOST.slice();
  lobbyOn[17] |= 0x01;
  refused(lobbyOn, "bad_signature");
  const host = WITH_HOST.slice();
  host[5] ^= 0x80;
  refused(host, "bad_signature");
  const sig = WITH_HOST.slice();
  sig[81] ^= 0x01;
  refused(sig, "bad_signature");
});

test("charter: unknown flag bits and a host id under the no-host flag are refused, even when signed", () => {
  for (const bit of [0x04, 0x08, 0x10, 0x80]) {
    const body = WITH_HOST.slice(0, 18);
    body[17] |= bit;
    refused(resign(body), "malformed");
    const plain = WITH_HOST.slice();
    plain[17] |= bit;
    refused(plain, "malformed");
  }
  const ghost = WITH_HOST.slice(0, 18);
  ghost[17] = 0x01; // lobby, no host, but the host id bytes are not zero
  refused(resign(ghost), "malformed");
});

test("charter: wrong length, wrong version or no bytes at all are refused", () => {
  refused(WITH_HOST.slice(0, 81), "bad_length");
  refused(e.concat(WITH_HOST, new Uint8Array(1)), "bad_length");
  refused(new Uint8Array(0), "bad_length");
  const v2 = WITH_HOST.slice(0, 18);
  v2[0] = 2;
  refused(resign(v2), "unknown_version");
  const v0 = WITH_HOST.slice();
  v0[0] = 0;
  refused(v0, "unknown_version");
  for (const junk of [undefined, null, C.charter, Array.from(WITH_HOST), WITH_HOST.buffer, { length: 82 }, 82]) refused(junk, "bad_length");
});
