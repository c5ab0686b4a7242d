// What this tab keeps of its rooms, in sessionStorage (this tab only, gone when it closes), so a
// reload takes the same seat back and reads on: the seat (room link, identity seeds, card time,
// nickname, member id, resume token, a lobby admission), the room's state (RoomSession.snapshot:
// membership, crypto state, stream position, unsent messages) and the conversation as shown
// (room/transcript.ts). docs/e2ee.md §19 says what this exposes. All of it is cleared on leave, on
// the room's end, and by quick exit (which clears the whole sessionStorage).
import type { SavedRoom, SeatInfo } from "./client.js";
import { b64, parseLocation, type RoomLink, unb64 } from "./wire.js";

const PREFIX = "chatserver.seat.";
const STATE = "chatserver.state.";
const LOG = "chatserver.log.";
/** The private room this tab was last in: after a reload its address is just /r. */
const LAST_PRIVATE = "chatserver.seat-private";

export interface StoredSeat {
  link: RoomLink;
  seat: SeatInfo;
  rulesAccepted: boolean;
}

interface Stored {
  v: 1;
  path: string;
  hash: string;
  ed: string;
  x: string;
  cardMs: number;
  nickname?: string;
  memberId: string;
  token: string;
  admitted: boolean;
  rules: boolean;
}

const store = (): Storage | null => {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
};

export function saveSeat(link: RoomLink, seat: SeatInfo, rulesAccepted: boolean): void {
  const host = link.hostSeed ? b64(link.hostSeed) : "";
  const entry: Stored = {
    v: 1,
    path: link.secret ? "/r" : `/r/${link.roomId}`,
    hash: link.secret ? b64(link.secret.secret) + (host ? `.${host}` : "") : host,
    ed: b64(seat.seeds.ed),
    x: b64(seat.seeds.x),
    cardMs: seat.cardMs,
    nickname: seat.nickname,
    memberId: seat.memberId,
    token: b64(seat.token),
    admitted: seat.admitted,
    rules: rulesAccepted,
  };
  try {
    store()?.setItem(PREFIX + link.roomId, JSON.stringify(entry));
    if (link.secret) store()?.setItem(LAST_PRIVATE, link.roomId);
  } catch {
    // storage full or disabled: a reload then starts over, as before
  }
}

export function loadSeat(roomId: string): StoredSeat | null {
  let e: Stored;
  try {
    e = JSON.parse(store()?.getItem(PREFIX + roomId) ?? "null") as Stored;
  } catch {
    return null;
  }
  if (!e || e.v !== 1) return null;
  const link = parseLocation(e.path, e.hash ? `#${e.hash}` : "");
  const ed = unb64(e.ed, 32);
  const x = unb64(e.x, 32);
  const token = unb64(e.token, 32);
  if (!link || "error" in link || link.roomId !== roomId || !ed || !x || !token) return null;
  const seat: SeatInfo = { seeds: { ed, x }, cardMs: e.cardMs, nickname: e.nickname, memberId: e.memberId, token, admitted: e.admitted };
  return { link, seat, rulesAccepted: e.rules };
}

/** The stored seat of the private room this tab was last in, if any. */
export function lastPrivateSeat(): StoredSeat | null {
  const id = store()?.getItem(LAST_PRIVATE);
  return id ? loadSeat(id) : null;
}

export function clearSeat(roomId: string): void {
  const s = store();
  s?.removeItem(PREFIX + roomId);
  s?.removeItem(STATE + roomId);
  s?.removeItem(LOG + roomId);
  if (s?.getItem(LAST_PRIVATE) === roomId) s.removeItem(LAST_PRIVATE);
}

// Byte arrays and the numbers JSON cannot hold (Infinity: muted until unmuted) as tagged objects.
function encode(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { $b: b64(value) };
  if (typeof value === "number" && !Number.isFinite(value)) return { $n: String(value) };
  return value;
}
function decode(_key: string, value: unknown): unknown {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    if (typeof v["$b"] === "string" && Object.keys(v).length === 1) return unb64(v["$b"]) ?? new Uint8Array(0);
    if (typeof v["$n"] === "string" && Object.keys(v).length === 1) return Number(v["$n"]);
  }
  return value;
}

function keep(key: string, value: unknown): boolean {
  try {
    store()?.setItem(key, JSON.stringify(value, encode));
    return true;
  } catch {
    return false; // storage full or disabled: a reload then starts over, as before
  }
}
function recall(key: string): unknown {
  try {
    return JSON.parse(store()?.getItem(key) ?? "null", decode);
  } catch {
    return null;
  }
}

/** The room's state for a reload (kept only while the seat is: see saveSeat). */
export function saveRoomState(roomId: string, saved: SavedRoom): void {
  if (!store()?.getItem(PREFIX + roomId)) return; // left meanwhile: nothing to come back to
  if (!keep(STATE + roomId, saved)) store()?.removeItem(STATE + roomId);
}
export function loadRoomState(roomId: string): SavedRoom | null {
  const v = recall(STATE + roomId) as Partial<SavedRoom> | null;
  // The shape only; RoomSession.load() checks the contents (and the page falls back if they fail).
  const obj = (x: unknown): boolean => !!x && typeof x === "object";
  if (!obj(v) || v!.v !== 1 || !obj(v!.view) || !obj(v!.crypto) || !obj(v!.seeds) || !Array.isArray(v!.members)) return null;
  return v as SavedRoom;
}

/** The conversation as shown (room/transcript.ts), bounded there. */
export function saveLog(roomId: string, entries: unknown[]): void {
  if (!store()?.getItem(PREFIX + roomId)) return;
  if (!keep(LOG + roomId, entries)) store()?.removeItem(LOG + roomId);
}
export function loadLog(roomId: string): unknown[] {
  const v = recall(LOG + roomId);
  return Array.isArray(v) ? v : [];
}
