// Proof of possession of a seat (mirrors chatserver/e2ee/seat.py). A card is public: every member
// receives every card, so presenting one proves nothing. Before `room.join`, `lobby.knock` or
// `room.resume` the server hands the connection a fresh, single-use nonce for the room
// (`room.challenge`), and the client signs
//
//     DS("seat") ‖ room_id(16) ‖ nonce ‖ member_id(16)
//
// with the Ed25519 key of the card it presents (for a resume, of the card the seat holds). The
// label differs from the link proof's DS("join"), so neither signature stands in for the other.
import { ID_LEN, JOIN_NONCE_MAX, JOIN_NONCE_MIN, SIG_LEN, ds } from "./constants.js";
import { E2EEError } from "./errors.js";
import type { Identity } from "./formats.js";
import { concat, ed25519Verify } from "./primitives.js";

/** The bytes a seat proof signs. */
export const seatMessage = (roomId: Uint8Array, nonce: Uint8Array, memberId: Uint8Array): Uint8Array =>
  concat(ds("seat"), roomId, nonce, memberId);

const inputsOk = (roomId: Uint8Array, nonce: Uint8Array, memberId: Uint8Array): boolean =>
  roomId.length === ID_LEN &&
  memberId.length === ID_LEN &&
  nonce.length >= JOIN_NONCE_MIN &&
  nonce.length <= JOIN_NONCE_MAX;

/** The answer to a room challenge, for the seat of this identity's card. */
export function signSeat(identity: Identity, roomId: Uint8Array, nonce: Uint8Array): Uint8Array {
  if (!inputsOk(roomId, nonce, identity.memberId)) {
    throw new E2EEError("bad_length", "seat nonce must be 16..64 bytes, ids 16");
  }
  return identity.sign(seatMessage(roomId, nonce, identity.memberId));
}

/** The server's check; false (never throws) on any bad input. */
export function verifySeatProof(
  edPublic: Uint8Array,
  roomId: Uint8Array,
  nonce: Uint8Array,
  memberId: Uint8Array,
  proof: Uint8Array,
): boolean {
  if (!inputsOk(roomId, nonce, memberId) || proof.length !== SIG_LEN) return false;
  return ed25519Verify(edPublic, proof, seatMessage(roomId, nonce, memberId));
}
