// Member link proofs (mirrors RoomSecret.sign_member and verify_member_link_proof in
// chatserver/e2ee/room_secret.py; docs/e2ee.md §3). In a private room every member carries
//
//     Ed25519(join_seed, DS("link-member") ‖ room_id(16) ‖ member_id(16))
//
// made with the link's join key, which only holders of the `#secret` fragment can derive. The
// other members check it against the join public key of their own link before they add the card,
// so a server (which never sees the secret) cannot slip a ghost member in to receive sender keys.
// The label differs from the join proof's DS("join") and the seat proof's DS("seat"), so none of
// these signatures stands in for another.
import { ID_LEN, SIG_LEN, ds } from "./constants.js";
import { E2EEError } from "./errors.js";
import type { RoomSecret } from "./formats.js";
import { concat, ed25519Sign, ed25519Verify } from "./primitives.js";

/** The bytes a member link proof signs. */
export const memberLinkMessage = (roomId: Uint8Array, memberId: Uint8Array): Uint8Array =>
  concat(ds("link-member"), roomId, memberId);

/** Vouch, with the link's join key, that `memberId` holds the link (sent with `room.join`). */
export function signMember(rs: RoomSecret, memberId: Uint8Array): Uint8Array {
  if (memberId.length !== ID_LEN || rs.roomId.length !== ID_LEN) {
    throw new E2EEError("bad_length", "member ids are 16 bytes");
  }
  return ed25519Sign(rs.joinSeed, memberLinkMessage(rs.roomId, memberId));
}

/** A member's link proof, checked by the other members; false (never throws) on any bad input. */
export function verifyMemberLinkProof(
  joinPublic: Uint8Array,
  roomId: Uint8Array,
  memberId: Uint8Array,
  proof: unknown,
): boolean {
  try {
    if (!(proof instanceof Uint8Array) || proof.length !== SIG_LEN) return false;
    if (!(joinPublic instanceof Uint8Array) || !(roomId instanceof Uint8Array) || !(memberId instanceof Uint8Array)) return false;
    if (roomId.length !== ID_LEN || memberId.length !== ID_LEN) return false;
    return ed25519Verify(joinPublic, proof, memberLinkMessage(roomId, memberId));
  } catch {
    return false;
  }
}
