// A tab's seats, kept in sessionStorage (this tab only, gone when it closes) so a reload takes the
// same seat back: the room link, the identity seeds, the card time, the nickname, the member id and
// resume token, and for lobby rooms that a host admitted us. Cleared on leave, on the room's end,
// and by quick exit (which clears the whole sessionStorage).
import type { SeatInfo } from "./client.js";
import { b64, parseLocation, type RoomLink, unb64 } from "./wire.js";

const PREFIX = "chatserver.seat.";
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
  if (s?.getItem(LAST_PRIVATE) === roomId) s.removeItem(LAST_PRIVATE);
}
