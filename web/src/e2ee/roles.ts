// Role statements (mirrors chatserver/e2ee/roles.py): a host's signature over a role change, so
// clients do not take roles from the server's word.
//
//     role_proof = signer_id(16) ‖ u64 issued_ms ‖ Ed25519(signer's card key, DS("role")
//                  ‖ room_id(16) ‖ member_id(16) ‖ u8 role ‖ u64 issued_ms ‖ signer_id(16))
//
// `role` is 0 member, 1 moderator, 2 host (co-host). A client counts a member as moderator or
// co-host only when the member's view carries a statement for exactly that role, signed by a
// member the client already counts as a host (the room's owner, or a co-host proven the same way).
import { ID_LEN, SIG_LEN, ds } from "./constants.js";
import { E2EEError } from "./errors.js";
import type { Identity } from "./formats.js";
import { concat, ed25519Verify, u64 } from "./primitives.js";

export const ROLE_CODES: Readonly<Record<string, number>> = Object.freeze({ member: 0, moderator: 1, host: 2 });
export const ROLE_PROOF_LEN = ID_LEN + 8 + SIG_LEN; // 88
const MAX_ISSUED_MS = 2 ** 53; // exclusive

const isRole = (role: unknown): role is string =>
  typeof role === "string" && Object.prototype.hasOwnProperty.call(ROLE_CODES, role);

/** The bytes a role statement signs. */
export function roleMessage(roomId: Uint8Array, memberId: Uint8Array, role: string, issuedMs: number, signerId: Uint8Array): Uint8Array {
  if (!isRole(role)) throw new E2EEError("malformed", "unknown role");
  return concat(ds("role"), roomId, memberId, new Uint8Array([ROLE_CODES[role]!]), u64(issuedMs), signerId);
}

/** Sign, with our card key, that `memberId` holds `role` in the room (sent with `member.role`). */
export function signRole(identity: Identity, roomId: Uint8Array, memberId: Uint8Array, role: string, issuedMs: number): Uint8Array {
  if (!isRole(role) || roomId.length !== ID_LEN || memberId.length !== ID_LEN) {
    throw new E2EEError("malformed", "role statement inputs");
  }
  if (!Number.isSafeInteger(issuedMs) || issuedMs < 0 || issuedMs >= MAX_ISSUED_MS) {
    throw new E2EEError("malformed", "issued_ms below 2^53");
  }
  const signed = roleMessage(roomId, memberId, role, issuedMs, identity.memberId);
  return concat(identity.memberId, u64(issuedMs), identity.sign(signed));
}

/** The member id that claims to have signed a statement (check it with `verifyRole`), or null. */
export function roleSigner(proof: unknown): Uint8Array | null {
  if (!(proof instanceof Uint8Array) || proof.length !== ROLE_PROOF_LEN) return null;
  return proof.slice(0, ID_LEN);
}

/** Does `proof` state `role` for `memberId`, signed by its signer's key? Never throws. */
export function verifyRole(signerEdPublic: Uint8Array, roomId: Uint8Array, memberId: Uint8Array, role: string, proof: unknown): boolean {
  try {
    if (!isRole(role) || !(proof instanceof Uint8Array) || proof.length !== ROLE_PROOF_LEN) return false;
    if (!(signerEdPublic instanceof Uint8Array) || !(roomId instanceof Uint8Array) || !(memberId instanceof Uint8Array)) return false;
    if (roomId.length !== ID_LEN || memberId.length !== ID_LEN) return false;
    const signerId = proof.subarray(0, ID_LEN);
    const issued = new DataView(proof.buffer, proof.byteOffset + ID_LEN, 8).getBigUint64(0, false);
    if (issued >= BigInt(MAX_ISSUED_MS)) return false;
    const sig = proof.subarray(ID_LEN + 8);
    return ed25519Verify(signerEdPublic, sig, roleMessage(roomId, memberId, role, Number(issued), signerId));
  } catch {
    return false;
  }
}
