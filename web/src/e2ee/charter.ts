// A private room's charter (mirrors chatserver/e2ee/charter.py): who holds the host seat and
// whether the room has a lobby, signed with the link key, so that clients take both from the link,
// never from the server's room view.
//
//     charter = 0x01 ‖ host_id(16) ‖ u8 flags ‖ Ed25519(join_seed, DS("charter") ‖ room_id(16)
//               ‖ 0x01 ‖ host_id ‖ flags)
//
// `flags` bit 0: the room has a lobby; bit 1: `host_id` names a host seat (otherwise it is 16 zero
// bytes). The creator signs it at `room.create` / `session.create`; the server keeps it and hands
// it out in the room and lobby views; every client checks it with the join public key its own link
// derives. The server lacks the link key, so it can neither name another host nor drop the lobby.
import { ID_LEN, SIG_LEN, ds } from "./constants.js";
import { E2EEError } from "./errors.js";
import type { RoomSecret } from "./formats.js";
import { concat, ctEq, ed25519Sign, ed25519Verify } from "./primitives.js";

export const CHARTER_VERSION = 1;
export const CHARTER_BODY_LEN = 1 + ID_LEN + 1;
export const CHARTER_LEN = CHARTER_BODY_LEN + SIG_LEN; // 82
export const CHARTER_LOBBY = 0x01;
export const CHARTER_HAS_HOST = 0x02;

export interface Charter {
  /** The host seat's member id; null in a room without a host seat. */
  hostId: Uint8Array | null;
  lobby: boolean;
}

/** The bytes the link key signs: DS("charter") ‖ room_id ‖ version ‖ host_id ‖ flags. */
export const charterMessage = (roomId: Uint8Array, body: Uint8Array): Uint8Array => concat(ds("charter"), roomId, body);

/** Sign a charter with the link's join key (sent with a private `room.create` / `session.create`). */
export function makeCharter(rs: RoomSecret, hostId: Uint8Array | null, lobby: boolean): Uint8Array {
  if (hostId !== null && (!(hostId instanceof Uint8Array) || hostId.length !== ID_LEN)) {
    throw new E2EEError("bad_length", "host ids are 16 bytes");
  }
  if (rs.roomId.length !== ID_LEN) throw new E2EEError("bad_length", "room ids are 16 bytes");
  const flags = (lobby ? CHARTER_LOBBY : 0) | (hostId !== null ? CHARTER_HAS_HOST : 0);
  const body = concat(new Uint8Array([CHARTER_VERSION]), hostId ?? new Uint8Array(ID_LEN), new Uint8Array([flags]));
  return concat(body, ed25519Sign(rs.joinSeed, charterMessage(rs.roomId, body)));
}

/** Check a charter against the link's join key; E2EEError on anything invalid. */
export function openCharter(joinPublic: Uint8Array, roomId: Uint8Array, charter: unknown): Charter {
  if (!(charter instanceof Uint8Array) || charter.length !== CHARTER_LEN) {
    throw new E2EEError("bad_length", `a charter is ${CHARTER_LEN} bytes`);
  }
  if (charter[0] !== CHARTER_VERSION) throw new E2EEError("unknown_version", "charter version");
  if (!(roomId instanceof Uint8Array) || roomId.length !== ID_LEN) throw new E2EEError("bad_length", "room ids are 16 bytes");
  const body = charter.slice(0, CHARTER_BODY_LEN);
  const sig = charter.slice(CHARTER_BODY_LEN);
  const flags = body[CHARTER_BODY_LEN - 1]!;
  if (flags & ~(CHARTER_LOBBY | CHARTER_HAS_HOST)) throw new E2EEError("malformed", "unknown charter flags");
  let valid = false;
  try {
    valid = ed25519Verify(joinPublic, sig, charterMessage(roomId, body));
  } catch {
    valid = false;
  }
  if (!valid) throw new E2EEError("bad_signature", "the charter is not signed with this room's link key");
  const hostId = body.slice(1, 1 + ID_LEN);
  const lobby = Boolean(flags & CHARTER_LOBBY);
  if (!(flags & CHARTER_HAS_HOST)) {
    if (!ctEq(hostId, new Uint8Array(ID_LEN))) throw new E2EEError("malformed", "a charter without a host names none");
    return { hostId: null, lobby };
  }
  return { hostId, lobby };
}
