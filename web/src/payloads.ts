// What clients seal for each other beyond plain messages (docs/moderation.md): ground rules (a
// meta blob under the link's key for private rooms) and pins (a type-1 body with `pin_id` and
// optional `links`). Mirrors chatserver/client/ and pins.py. Q&A questions (signed by the
// asker, sealed to one host) are in e2ee/question.ts.
import { type RoomSecret, openMeta, sealMeta } from "./e2ee/formats.js";
import { defaultRng, utf8 } from "./e2ee/primitives.js";
import { b64 } from "./wire.js";

/** Ground rules on the wire: a meta blob under the link's meta key (private rooms), else UTF-8. */
export function sealRules(secret: RoomSecret | null, text: string): Uint8Array {
  return secret ? sealMeta(secret.metaKey, secret.roomId, text) : utf8(text);
}
/** The ground rules' text, or null when they cannot be read (no rules, or not with this link). */
export function openRules(secret: RoomSecret | null, blob: unknown): string | null {
  if (!(blob instanceof Uint8Array) || !blob.length) return null;
  try {
    return secret ? openMeta(secret.metaKey, secret.roomId, blob) : new TextDecoder("utf-8", { fatal: true }).decode(blob);
  } catch {
    return null;
  }
}
/** Rules too long for the wire: 2048 bytes listed; a meta blob holds at most 1024 bytes of text. */
export function rulesTooLong(privateRoom: boolean, text: string): boolean {
  return utf8(text).length > (privateRoom ? 1024 : 2048);
}

/** One resource of a pinned list; only https addresses become links. */
export interface PinLink {
  label: string;
  url: string;
}

/** The room's pin as this client knows it: readable, or still waiting for the pinner's keys. */
export interface Pin {
  pinId: string | null;
  text: string;
  links: PinLink[];
  senderId: string;
  seq: number;
  readable: boolean;
}

const MAX_PIN_LINKS = 10;

/** The pin in a type-1 body (`pin_id`, optional `links`), or null when it is not a pin. */
export function readPin(text: string, body: Record<string, unknown>, senderId: string, seq: number): Pin | null {
  const pinId = body["pin_id"];
  if (typeof pinId !== "string" || !pinId.length || pinId.length > 64) return null;
  const raw = Array.isArray(body["links"]) ? (body["links"] as unknown[]).slice(0, MAX_PIN_LINKS) : [];
  const links: PinLink[] = [];
  for (const item of raw) {
    if (!item || typeof item !== "object") continue;
    const { label, url } = item as Record<string, unknown>;
    if (typeof label === "string" && typeof url === "string" && label.length > 0 && label.length <= 80 && url.length <= 500) {
      links.push({ label, url });
    }
  }
  return { pinId, text, links, senderId, seq, readable: true };
}

/** A new pin id: 16 url-safe characters, kept across re-sends. */
export const newPinId = (): string => b64(defaultRng(12));
