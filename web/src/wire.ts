// Wire helpers: 22-char base64url ids, msgpack bin <-> Uint8Array (notepack encodes only
// ArrayBuffer as bin and decodes bin as ArrayBuffer), and room links (chatserver/links.py).
import { type RoomSecret, deriveRoomSecret } from "./e2ee/formats.js";

const ID_RE = /^[A-Za-z0-9_-]{21}[AQgw]$/;

export function b64(data: Uint8Array): string {
  let s = "";
  for (const b of data) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Base64url without padding, canonical only; `length` (if given) must match. */
export function unb64(text: string, length?: number): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  let raw: string;
  try {
    raw = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  } catch {
    return null;
  }
  const out = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  if ((length !== undefined && out.length !== length) || b64(out) !== text) return null;
  return out;
}

export const b64id = (raw: Uint8Array): string => b64(raw);
export const isId = (s: unknown): s is string => typeof s === "string" && ID_RE.test(s);
export function unb64id(s: string): Uint8Array {
  const out = unb64(s, 16);
  if (!out) throw new Error("not an id");
  return out;
}

/** Outgoing payloads: every Uint8Array becomes an exact ArrayBuffer (msgpack bin). */
export function toWire(v: unknown): unknown {
  if (v instanceof Uint8Array) return v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength);
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toWire(x);
    return out;
  }
  return v;
}

/** Incoming payloads: every ArrayBuffer (msgpack bin) becomes a Uint8Array. */
export function fromWire(v: unknown): unknown {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = fromWire(x);
    return out;
  }
  return v;
}

export interface RoomLink {
  roomId: string;
  secret: RoomSecret | null;
  /** Session host links carry the host's 64-byte identity seed (Ed25519 32 ‖ X25519 32). */
  hostSeed: Uint8Array | null;
}

/** Read a room link from a path and fragment: /r/ROOM_ID[#HOSTSEED] or /r#SECRET[.HOSTSEED]. */
export function parseLocation(pathname: string, hash: string): RoomLink | { error: string } | null {
  const fragment = hash.startsWith("#") ? hash.slice(1) : hash;
  const m = /^\/r(?:\/([^/]*))?\/?$/.exec(pathname);
  if (!m) return null;
  const room = m[1];
  if (room) {
    if (!isId(room)) return { error: "This link's room id is not valid." };
    const seed = fragment ? unb64(fragment, 64) : null;
    if (fragment && !seed) return { error: "This host link is damaged. Ask for it again." };
    return { roomId: room, secret: null, hostSeed: seed };
  }
  if (!fragment) return { error: "This private link is missing its secret part (after #). Ask for the full link." };
  const [secretText, seedText] = fragment.split(".", 2) as [string, string | undefined];
  const raw = unb64(secretText, 32);
  if (!raw) return { error: "This private link is damaged. Ask for the full link again." };
  const seed = seedText ? unb64(seedText, 64) : null;
  if (seedText && !seed) return { error: "This host link is damaged. Ask for it again." };
  const secret = deriveRoomSecret(raw);
  return { roomId: b64id(secret.roomId), secret, hostSeed: seed };
}

export function privateLink(origin: string, secret: RoomSecret): string {
  return `${origin}/r#${b64(secret.secret)}`;
}
export function listedLink(origin: string, roomId: string): string {
  return `${origin}/r/${roomId}`;
}
