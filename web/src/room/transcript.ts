// The conversation as this tab showed it, kept so a reload shows it again (seats.ts: the tab's
// sessionStorage, cleared on leave, on the room's end and by quick exit). Only what the page
// displayed: decrypted text of others' messages, our own with their state, and system lines.
// Bounded (the newest MAX_ENTRIES, at most MAX_CHARS of text); in a room whose messages disappear,
// an entry goes when its message would have.
import type { OwnMessage, OwnState } from "../client.js";
import { loadLog, saveLog } from "../seats.js";

export type Entry =
  | { k: "msg"; seq: number; ts: number; from: string; name: string; text: string; extra: Record<string, unknown>; digest: string; hidden?: boolean }
  | { k: "own"; localId: number; seq: number | null; ts: number; text: string; extra: Record<string, unknown>; state: OwnState; error: string | null; digest?: string; hidden?: boolean }
  | { k: "note"; text: string; seq?: number };

const MAX_ENTRIES = 300;
const MAX_CHARS = 400_000;
const SAVE_AFTER_MS = 200;

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

/** One stored entry, or null when it is not one (storage is this tab's, but may hold anything). */
function valid(v: unknown): Entry | null {
  if (!isObj(v) || typeof v["text"] !== "string") return null;
  if (v["k"] === "note") return v["seq"] === undefined || isInt(v["seq"]) ? (v as Entry) : null;
  if (!isInt(v["ts"]) || !isObj(v["extra"])) return null;
  if (v["k"] === "msg") {
    return isInt(v["seq"]) && typeof v["from"] === "string" && typeof v["name"] === "string" && typeof v["digest"] === "string" ? (v as Entry) : null;
  }
  if (v["k"] === "own") {
    const stateOk = v["state"] === "sent" || v["state"] === "pending" || v["state"] === "failed";
    return isInt(v["localId"]) && (v["seq"] === null || isInt(v["seq"])) && stateOk ? (v as Entry) : null;
  }
  return null;
}

export class Transcript {
  entries: Entry[];
  #timer: number | undefined;

  constructor(
    readonly roomId: string,
    entries: Entry[] = [],
  ) {
    this.entries = entries;
  }

  /** What this tab kept of the room, oldest first; entries past `disappearAfterS` are dropped. */
  static load(roomId: string, disappearAfterS: number, nowMs: number = Date.now()): Transcript {
    const entries = loadLog(roomId)
      .map(valid)
      .filter((e): e is Entry => e !== null)
      .filter((e) => !(disappearAfterS > 0 && e.k !== "note" && e.ts + disappearAfterS * 1000 <= nowMs));
    return new Transcript(roomId, entries);
  }

  note(text: string, seq?: number): void {
    this.#add(seq === undefined ? { k: "note", text } : { k: "note", text, seq });
  }

  message(m: { seq: number; ts: number; senderId: string; pseudonym: string; text: string; extra: Record<string, unknown>; digest: string }): void {
    this.#add({ k: "msg", seq: m.seq, ts: m.ts, from: m.senderId, name: m.pseudonym, text: m.text, extra: m.extra, digest: m.digest });
  }

  /** Our own message, added or brought up to date (by its local id). */
  own(m: OwnMessage): void {
    const entry: Entry = { k: "own", localId: m.localId, seq: m.seq, ts: m.ts, text: m.text, extra: m.extra ?? {}, state: m.state, error: m.error };
    if (m.digest) entry.digest = m.digest;
    const i = this.entries.findIndex((e) => e.k === "own" && e.localId === m.localId);
    if (i >= 0) {
      this.entries[i] = entry;
      this.save();
    } else this.#add(entry);
  }

  hidden(digest: string, hidden: boolean): void {
    for (const e of this.entries) if (e.k !== "note" && e.digest === digest) e.hidden = hidden;
    this.save();
  }

  /** Write soon (a burst of messages is one write); `now` writes at once (the page is going). */
  save(now = false): void {
    window.clearTimeout(this.#timer);
    if (now) saveLog(this.roomId, this.entries);
    else this.#timer = window.setTimeout(() => saveLog(this.roomId, this.entries), SAVE_AFTER_MS);
  }

  /** Stop writing (the seat was given up: seats.ts has cleared what was kept). */
  dispose(): void {
    window.clearTimeout(this.#timer);
  }

  #add(e: Entry): void {
    this.entries.push(e);
    if (this.entries.length > MAX_ENTRIES) this.entries.splice(0, this.entries.length - MAX_ENTRIES);
    let chars = 0;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      chars += this.entries[i]!.text.length;
      if (chars > MAX_CHARS) {
        this.entries.splice(0, i + 1);
        break;
      }
    }
    this.save();
  }
}
