// The protocol client (docs/protocol.md), mirroring chatserver/client/: one Socket.IO connection
// (websocket only, msgpack), rooms that apply ordered pushes strictly in seq order, key shares
// before envelopes, resume after reconnects (rejoin with a fresh identity when the seat is gone),
// and own messages matched by envelope hash so a retried send never shows twice.
import { io, type Socket } from "socket.io-client";
import * as msgpackParser from "socket.io-msgpack-parser";
import { makeCharter, openCharter } from "./e2ee/charter.js";
import { E2EEError } from "./e2ee/errors.js";
import { Identity, type RoomSecret, newRoomSecret, openMeta, parseCard, parseEnvelope, parseSkd, sealMeta, signJoin } from "./e2ee/formats.js";
import { concat, defaultRng, ed25519Verify, hex, sha256, u32 } from "./e2ee/primitives.js";
import { openSealedQuestion, questionBody, sealQuestion } from "./e2ee/question.js";
import { signSeat } from "./e2ee/seat.js";
import { signMember, verifyMemberLinkProof } from "./e2ee/member_link.js";
import { roleSigner, signRole, verifyRole } from "./e2ee/roles.js";
import { admissionMessage, makeBadge, signInProof, splitToken } from "./console/credentials.js";
import { type CryptoState, RoomCrypto, encodeText } from "./e2ee/session.js";
import { type RoomLink, b64id, fromWire, listedLink, privateLink, toWire, unb64id } from "./wire.js";
import { type Pin, type PinLink, newPinId, openRules, readPin, sealRules } from "./payloads.js";

export { type Pin, type PinLink, openRules, rulesTooLong, sealRules } from "./payloads.js";

const KEY_WAIT_MS = 5000;
const CALL_TIMEOUT_MS = 10000;
const OFFLINE_FAIL_MS = 30000;
const MAX_WAITING = 256;
/** room.catchup pages asked again after `rate_limited` before the resume starts over. */
const CATCHUP_RATE_WAITS = 5;
/** Refusals that mean "not now", never "no": asked again after a wait (a resume keeps its seat, a
 * message its envelope). `unavailable`: the server's backend is briefly unreachable. */
const RETRY_LATER = new Set(["unavailable", "rate_limited"]);
/** The first wait before a deferred resume is asked again, doubling up to the second. */
const RESUME_RETRY_MS = 250;
const RESUME_RETRY_MAX_MS = 5000;
/** One sender's messages set aside until its sender key arrives. */
const MAX_HELD_PER_SENDER = 64;
const REPIN_DELAY_MS = 1000; // one re-send of the pin after a burst of joins (admit all)
/** Received messages whose report evidence is kept (in memory only), newest last. */
export const MAX_EVIDENCE = 500;
/** Of those, kept for a reload (docs/e2ee.md §19): each is an envelope, up to a few KB. */
const KEPT_EVIDENCE = 50;
const STAMP_BYTES = 32;
/** Shares in one `key.send` (MAX_KEY_SHARES in chatserver/protocol/inbound.py). */
export const MAX_KEY_SHARES = 128;

/** The longest run of the outbox's first shares that makes one `key.send`: at most
 * MAX_KEY_SHARES, each recipient once (a second share for someone waits for the next batch). */
export function nextKeyBatch<T extends readonly [Uint8Array, Uint8Array]>(outbox: readonly T[]): T[] {
  const seen = new Set<string>();
  const batch: T[] = [];
  for (const entry of outbox) {
    const id = hex(entry[0]);
    if (batch.length >= MAX_KEY_SHARES || seen.has(id)) break;
    seen.add(id);
    batch.push(entry);
  }
  return batch;
}

export class ChatError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
    /** What else the refusal carries: `rules` with `rules_not_accepted` (to read before accepting). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

type Ack = { ok: boolean; error?: { code: string; message: string; retry_after?: number } } & Record<string, any>;

export interface MemberView {
  member_id: string;
  pseudonym: string;
  role: string;
  card: Uint8Array;
  joined_at: number;
  /** In a lobby room: u32 epoch ‖ the host's signature over our card (docs/moderation.md). */
  admission?: Uint8Array | null;
  /** Muted until this time (float seconds, may be Infinity); null when not muted. */
  muted_until?: number | null;
  /** In a private room: the link key's signature over the member id (src/e2ee/member_link.ts),
   * which every other member checks before admitting the card; null in listed rooms. */
  member_proof?: Uint8Array | null;
  /** A moderator's or co-host's role statement, signed by the host who gave the role
   * (src/e2ee/roles.ts); null for members and the owner. */
  role_proof?: Uint8Array | null;
}

/** A per-room identity's two 32-byte seeds (Ed25519 ‖ X25519), to take the same seat again. */
export interface Seeds {
  ed: Uint8Array;
  x: Uint8Array;
}
export const newSeeds = (): Seeds => ({ ed: defaultRng(32), x: defaultRng(32) });

/** What a tab keeps to take its seat back after a reload (docs/protocol.md, room.resume). */
export interface SeatInfo {
  seeds: Seeds;
  cardMs: number;
  nickname?: string;
  memberId: string;
  token: Uint8Array;
  /** A lobby room whose host admitted this card: the server lets it back in without knocking. */
  admitted: boolean;
}

/** A room member as the UI sees it. */
export interface MemberInfo {
  pseudonym: string;
  /** The trusted role (what every label, quote, admission and action check uses): "host" for the
   * room's owner, else the view's "moderator" or "host" only when a trusted host signed it for
   * exactly this member (src/e2ee/roles.ts), else "member". */
  role: string;
  /** The role the server's view claims (what the server enforces); may differ from `role`. */
  claimedRole: string;
  /** The view's role statement (bytes), if any. */
  roleProof: Uint8Array | null;
  card: Uint8Array;
  mutedUntil: number | null;
}

/** RoomSession.snapshot(): plain data (numbers, strings, byte arrays, plain objects) that the
 * page keeps in the tab's sessionStorage to come back to the seat after a reload. */
export interface SavedRoom {
  v: 1;
  seeds: Seeds;
  cardMs: number;
  memberId: string;
  token: Uint8Array;
  seq: number;
  crypto: CryptoState;
  members: Array<[string, MemberInfo]>;
  removed: string[];
  view: Record<string, any>;
  pseudonym: string;
  /** Our role as the server enforces it (what our own controls follow). */
  role: string;
  nickname: string | null;
  lobby: boolean;
  hostId: string | null;
  hostCard: Uint8Array | null;
  charter: { hostId: string | null; lobby: boolean } | null;
  pinned: Pin | null;
  localIds: number;
  /** Own messages not yet sequenced, with the envelope already sealed for them, if any. */
  unsent: Array<{ localId: number; text: string; ts: number; extra: Record<string, unknown>; env: Uint8Array | null; epoch: number }>;
  /** Messages set aside until their sender's key arrives. */
  held: Array<[string, Array<Record<string, any>>]>;
  /** Report evidence of the newest KEPT_EVIDENCE messages of others, so they stay reportable. */
  evidence: Array<[string, Evidence]>;
}

/** A Q&A question opened by a host (docs/moderation.md, "Q&A mode"). */
export interface Question {
  from: string;
  pseudonym: string;
  text: string;
  /** The asker agreed to be named with the answer. */
  consent: boolean;
}

export interface DirectoryEntry {
  room_id: string;
  topic: string;
  kind: string;
  members: number;
  created_at: number;
  /** Sessions: start time, and the badge to verify the host's name with. */
  starts_at?: number | null;
  badge?: Uint8Array | null;
  host_id?: string | null;
}

export type ConnState = "connecting" | "online" | "offline";

/** One Socket.IO connection; reconnects by itself and resumes every room. */
export class Connection {
  readonly socket: Socket;
  readonly rooms = new Map<string, RoomSession>();
  readonly waiters = new Map<string, Waiting>();
  /** The therapist credential (certificate and key), in memory only, once signed in. */
  #therapist: { cert: Uint8Array; seed: Uint8Array } | null = null;
  state: ConnState = "connecting";
  onState: (s: ConnState) => void = () => {};
  #calls = new Set<(e: ChatError) => void>();
  #everConnected = false;
  #retryTimer: number | undefined;
  #retryDelay = 250;

  constructor(readonly origin: string = location.origin) {
    this.socket = io(origin, {
      transports: ["websocket"],
      parser: msgpackParser,
      reconnection: true,
      reconnectionDelay: 250,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
      autoConnect: true,
    });
    this.socket.on("connect", () => void this.#onConnect());
    this.socket.on("disconnect", (reason) => this.#onDisconnect(String(reason)));
    this.socket.on("connect_error", () => this.#setState("offline"));
    for (const name of ["member.joined", "member.left", "member.updated", "msg", "room.updated", "room.ended", "session.updated", "msg.hidden", "pin.cleared", "key", "typing"]) {
      this.socket.on(name, (data: unknown) => {
        const d = fromWire(data) as Record<string, any>;
        if (!d || typeof d !== "object") return;
        this.rooms.get(String(d["room_id"]))?.onPush(name, d);
      });
    }
    // Directed to hosts and moderators (not ordered), and to lobby waiters.
    for (const name of ["lobby.waiting", "report", "qa.question"]) {
      this.socket.on(name, (data: unknown) => {
        const d = fromWire(data) as Record<string, any>;
        if (d && typeof d === "object") this.rooms.get(String(d["room_id"]))?.staff?.(name, d);
      });
    }
    for (const name of ["lobby.admitted", "lobby.declined"]) {
      this.socket.on(name, (data: unknown) => {
        const d = fromWire(data) as Record<string, any>;
        if (!d || typeof d !== "object") return;
        const w = this.waiters.get(String(d["room_id"]));
        if (!w) return;
        this.waiters.delete(w.link.roomId);
        w.decide(name === "lobby.admitted", String(d["reason"] ?? "declined"));
      });
    }
  }

  #setState(s: ConnState): void {
    if (this.state !== s) {
      this.state = s;
      this.onState(s);
    }
  }

  async #onConnect(): Promise<void> {
    this.#retryDelay = 250;
    const again = this.#everConnected;
    this.#everConnected = true;
    if (again) {
      for (const room of [...this.rooms.values()]) {
        try {
          await room.resume();
        } catch (e) {
          if (e instanceof ChatError && e.code === "connection_lost") return; // dropped again
          this.forceReconnect();
          return;
        }
      }
    }
    if (this.socket.connected) this.#setState("online");
  }

  #onDisconnect(reason: string): void {
    this.#setState("offline");
    for (const fail of [...this.#calls]) fail(new ChatError("connection_lost", "The connection to the server was lost."));
    this.#calls.clear();
    for (const room of this.rooms.values()) room.offline();
    // Socket.IO does not reconnect by itself after a server-side disconnect: do it here.
    if (reason === "io server disconnect" || reason === "io client disconnect (forced)") {
      window.clearTimeout(this.#retryTimer);
      const delay = this.#retryDelay * (0.75 + Math.random() / 2);
      this.#retryDelay = Math.min(this.#retryDelay * 2, 5000);
      this.#retryTimer = window.setTimeout(() => this.socket.connect(), delay);
    }
  }

  /** Drop the transport so the usual reconnect-and-resume runs. */
  forceReconnect(): void {
    if (!this.socket.connected) return;
    this.socket.disconnect();
    this.#onDisconnect("io client disconnect (forced)");
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  /** Emit one event with an ack; rejects with ChatError("connection_lost") if the connection drops. */
  call(event: string, data: Record<string, unknown>, timeoutMs = CALL_TIMEOUT_MS): Promise<Ack> {
    return new Promise((resolve, reject) => {
      if (!this.socket.connected) {
        reject(new ChatError("connection_lost", "Not connected."));
        return;
      }
      const fail = (e: ChatError) => {
        window.clearTimeout(timer);
        reject(e);
      };
      const timer = window.setTimeout(() => {
        this.#calls.delete(fail);
        reject(new ChatError("timeout", `No answer from the server to ${event}.`));
      }, timeoutMs);
      this.#calls.add(fail);
      this.socket.emit(event, toWire(data), (ack: unknown) => {
        window.clearTimeout(timer);
        if (!this.#calls.delete(fail)) return; // already failed
        resolve(fromWire(ack) as Ack);
      });
    });
  }

  async request(event: string, data: Record<string, unknown>): Promise<Ack> {
    return checked(await this.call(event, data));
  }

  async listRooms(topic?: string): Promise<DirectoryEntry[]> {
    const ack = await this.request("room.list", topic ? { topic } : {});
    return ack["rooms"] as DirectoryEntry[];
  }

  /** Create a room; returns the link to join (private rooms: a fresh secret in the fragment). */
  async createRoom(opts: { listed: boolean; topic?: string; title?: string; disappearAfterS?: number }): Promise<{ link: RoomLink; url: string }> {
    // The creator moderates: the link kept in this tab holds the seed of the identity that takes
    // the room's host seat (chatserver/client/connection.py create_room, host_seat); invite links never do.
    const hostSeed = defaultRng(64);
    const host = Identity.fromSeeds(hostSeed.slice(0, 32), hostSeed.slice(32));
    const payload: Record<string, unknown> = { kind: "peer", listed: opts.listed, host_id: b64id(host.memberId) };
    if (opts.disappearAfterS) payload["disappear_after_s"] = opts.disappearAfterS;
    if (opts.listed) {
      payload["topic"] = opts.topic;
      const ack = await this.request("room.create", payload);
      const roomId = String(ack["room"]["room_id"]);
      return { link: { roomId, secret: null, hostSeed }, url: listedLink(this.origin, roomId) };
    }
    const secret = newRoomSecret();
    payload["room_id"] = b64id(secret.roomId);
    payload["join_key"] = secret.joinPublic;
    // The link key vouches for the host seat (and no lobby): clients take both from it.
    payload["charter"] = makeCharter(secret, host.memberId, false);
    if (opts.title) payload["title"] = sealMeta(secret.metaKey, secret.roomId, opts.title);
    await this.request("room.create", payload);
    return { link: { roomId: b64id(secret.roomId), secret, hostSeed }, url: privateLink(this.origin, secret) };
  }

  /** Sign this connection in as a verified therapist (`cst1.<cert>.<seed>`): proof of possession. */
  async signIn(token: string): Promise<{ id: string; name: string; expires_at: number }> {
    const { cert, seed } = splitToken(token);
    const nonce = (await this.request("therapist.challenge", {}))["nonce"] as Uint8Array;
    const ack = await this.request("therapist.signin", { cert, sig: signInProof(seed, nonce) });
    this.#therapist = { cert, seed };
    return ack["therapist"];
  }

  /** Create a verified session (after signIn); returns the participants' link and the host link.
   * Private sessions seal the title and rules with the link's meta key; listed ones carry a topic. */
  async createSession(opts: {
    title?: string;
    capacity?: number;
    startsAt?: number;
    durationS?: number;
    lobby?: boolean;
    rules?: string;
    listed?: boolean;
    topic?: string;
  }): Promise<{ link: RoomLink; url: string; hostLink: RoomLink }> {
    if (!this.#therapist) throw new ChatError("not_signed_in", "Sign in first.");
    const { cert, seed } = this.#therapist;
    const hostSeed = defaultRng(64);
    const host = Identity.fromSeeds(hostSeed.slice(0, 32), hostSeed.slice(32));
    const listed = Boolean(opts.listed);
    const secret = listed ? null : newRoomSecret();
    const roomKey = secret ? secret.roomId : defaultRng(16);
    const roomId = b64id(roomKey);
    const payload: Record<string, unknown> = {
      listed,
      lobby: opts.lobby ?? true,
      qa: false,
      room_id: roomId,
      host_id: b64id(host.memberId),
      badge: makeBadge(cert, seed, roomKey, host.memberId),
    };
    if (secret) {
      payload["join_key"] = secret.joinPublic;
      payload["charter"] = makeCharter(secret, host.memberId, Boolean(payload["lobby"]));
      if (opts.title) payload["title"] = sealMeta(secret.metaKey, secret.roomId, opts.title);
    } else payload["topic"] = opts.topic;
    if (opts.rules) payload["rules"] = sealRules(secret, opts.rules);
    if (opts.capacity) payload["capacity"] = opts.capacity;
    if (opts.startsAt) payload["starts_at"] = opts.startsAt;
    if (opts.durationS) payload["duration_s"] = opts.durationS;
    await this.request("session.create", payload);
    return {
      link: { roomId, secret, hostSeed: null },
      url: secret ? privateLink(this.origin, secret) : listedLink(this.origin, roomId),
      hostLink: { roomId, secret, hostSeed },
    };
  }

  /** Wait in a session's lobby; the same identity and card join once a host admits us. */
  async knock(link: RoomLink, nickname?: string, acceptRules = false): Promise<Waiting> {
    const seeds = newSeeds();
    const identity = Identity.fromSeeds(seeds.ed, seeds.x);
    const cardMs = Date.now();
    const card = identity.card(unb64id(link.roomId), cardMs);
    const payload: Record<string, unknown> = { room_id: link.roomId, card, accept_rules: acceptRules };
    if (nickname) payload["nickname"] = nickname;
    Object.assign(payload, await answerChallenge(this, link.roomId, identity, link.secret));
    const waiting = new Waiting(link, identity, seeds, cardMs, nickname);
    this.waiters.set(link.roomId, waiting);
    try {
      const ack = await this.request("lobby.knock", payload);
      const info = ack["lobby"] as Record<string, any>;
      // The host (whose badge the waiting room checks) and the lobby flag come from the charter.
      const trusted = trustedRoom(link.secret, info);
      waiting.info = { ...info, host_id: trusted.hostId, lobby: trusted.lobby };
      waiting.pseudonym = String(ack["pseudonym"]);
    } catch (e) {
      this.waiters.delete(link.roomId);
      throw e;
    }
    return waiting;
  }

  /** Join; a room with ground rules refuses with `rules_not_accepted` (its `details.rules` to show)
   * until `acceptRules` says the person read and accepted them. */
  async join(link: RoomLink, nickname: string | undefined, listener: RoomListener, admitted?: Waiting, acceptRules = false): Promise<RoomSession> {
    const room = new RoomSession(this, link, nickname, listener);
    room.acceptRules = acceptRules;
    if (admitted) room.preset = { seeds: admitted.seeds, cardMs: admitted.cardMs, keep: true };
    this.rooms.set(link.roomId, room);
    try {
      await room.join();
    } catch (e) {
      this.rooms.delete(link.roomId);
      throw e;
    }
    return room;
  }

  /** After a reload: take the stored seat again with the same identity and card. If the old seat
   * is still held (the reload came within the resume grace), resume it with its token, give it up,
   * and join again: crypto state cannot survive a reload, so the seat is re-taken fresh. */
  async restore(link: RoomLink, seat: SeatInfo, listener: RoomListener, acceptRules = false): Promise<RoomSession> {
    const room = new RoomSession(this, link, seat.nickname, listener);
    room.acceptRules = acceptRules;
    const preset = { seeds: seat.seeds, cardMs: seat.cardMs, keep: seat.admitted };
    room.preset = preset;
    this.rooms.set(link.roomId, room);
    try {
      try {
        await room.join();
      } catch (e) {
        if (!(e instanceof ChatError && e.code === "already_member")) throw e;
        // The old seat is still held: take it with its token and its card's key, then give it up.
        const held = Identity.fromSeeds(seat.seeds.ed, seat.seeds.x);
        const { seat_proof } = await answerChallenge(this, link.roomId, held, null);
        const resumed = await this.call("room.resume", { room_id: link.roomId, member_id: seat.memberId, token: seat.token, seat_proof, epoch: 0, last_seq: 0 });
        if (!resumed.ok) throw e;
        await this.call("room.leave", { room_id: link.roomId });
        room.preset = preset;
        await room.join();
      }
    } catch (e) {
      this.rooms.delete(link.roomId);
      throw e;
    }
    return room;
  }

  /** After a reload, with the tab's snapshot of the room (RoomSession.snapshot): the same seat,
   * resumed where it was, nobody sees us leave. `shown` gets the room once its state is back and
   * before anything arrives (the page mounts its view there). Throws when it cannot be taken back;
   * the caller then tries restore() or the join form. */
  async reopen(link: RoomLink, saved: SavedRoom, listener: RoomListener, shown: (room: RoomSession) => void, acceptRules = false): Promise<RoomSession> {
    const room = new RoomSession(this, link, saved.nickname ?? undefined, listener);
    room.acceptRules = acceptRules;
    this.rooms.set(link.roomId, room);
    try {
      await room.load(saved);
      shown(room);
      await room.comeBack();
    } catch (e) {
      if (this.rooms.get(link.roomId) === room) this.rooms.delete(link.roomId);
      throw e;
    }
    return room;
  }

  waitOnline(): Promise<void> {
    if (this.socket.connected && this.state === "online") return Promise.resolve();
    return new Promise((resolve) => {
      const prev = this.onState;
      const check = (s: ConnState) => {
        prev(s);
        if (s === "online") {
          this.onState = prev;
          resolve();
        }
      };
      this.onState = check;
    });
  }
}

/** What a room's view may say only under the link key: the host seat's id and the lobby flag.
 * In a private room both come from the charter (src/e2ee/charter.ts), checked with the join key
 * our own link derives, never from the server's `host_id` / `lobby`; a missing or forged charter
 * is refused with ChatError `bad_charter`. A listed room has no link key: the view's values. */
export function trustedRoom(secret: RoomSecret | null, view: unknown): { hostId: string | null; lobby: boolean } {
  if (!view || typeof view !== "object") throw new ChatError("bad_ack", "The server sent an unexpected answer.");
  const v = view as Record<string, unknown>;
  if (!secret) return { hostId: typeof v["host_id"] === "string" ? v["host_id"] : null, lobby: Boolean(v["lobby"]) };
  try {
    const charter = openCharter(secret.joinPublic, secret.roomId, v["charter"]);
    return { hostId: charter.hostId ? b64id(charter.hostId) : null, lobby: charter.lobby };
  } catch (e) {
    if (!(e instanceof E2EEError)) throw e;
    throw new ChatError("bad_charter", describeError("bad_charter"));
  }
}

export function checked(ack: Ack): Ack {
  if (!ack || typeof ack !== "object") throw new ChatError("bad_ack", "The server sent an unexpected answer.");
  if (!ack.ok) {
    const err = ack.error ?? { code: "unknown", message: "" };
    const { code, message, retry_after, ...details } = err as Record<string, any>;
    throw new ChatError(String(code), String(message), retry_after, details);
  }
  return ack;
}

/** What answering a room challenge needs of the connection (a Connection, or a test double). */
export interface Requester {
  request(event: string, data: Record<string, unknown>): Promise<Ack>;
}

/** Ask for a fresh room challenge and answer it (docs/protocol.md, room.challenge): `seat_proof`,
 * the card key's signature (src/e2ee/seat.ts), so only the holder of the card's private key takes
 * or resumes its seat; and in a private room `proof`, the link key's signature over the same
 * nonce. One challenge answers one join, knock or resume. */
export async function answerChallenge(
  conn: Requester,
  roomId: string,
  identity: Identity,
  secret: RoomSecret | null,
): Promise<{ seat_proof: Uint8Array; proof?: Uint8Array }> {
  const nonce = (await conn.request("room.challenge", { room_id: roomId }))["nonce"];
  if (!(nonce instanceof Uint8Array)) throw new ChatError("bad_ack", "The server sent an unexpected answer.");
  const out: { seat_proof: Uint8Array; proof?: Uint8Array } = { seat_proof: signSeat(identity, unb64id(roomId), nonce) };
  if (secret) out.proof = signJoin(secret, nonce, identity.memberId);
  return out;
}

/** The member id an envelope's signed header names as its sender, or null if it does not parse.
 * RoomCrypto.decrypt verifies the signature against that member's card. */
export function signedSender(env: unknown): string | null {
  if (!(env instanceof Uint8Array)) return null;
  try {
    return b64id(parseEnvelope(env).senderId);
  } catch {
    return null;
  }
}

/** A place in a session's lobby: nothing of the room arrives until a host admits us. */
export class Waiting {
  info: Record<string, any> = {};
  pseudonym = "";
  onDecision: (admitted: boolean, reason: string) => void = () => {};
  decided: { admitted: boolean; reason: string } | null = null;
  constructor(
    readonly link: RoomLink,
    readonly identity: Identity,
    readonly seeds: Seeds,
    readonly cardMs: number,
    readonly nickname: string | undefined,
  ) {}
  decide(admitted: boolean, reason: string): void {
    if (this.decided) return;
    this.decided = { admitted, reason };
    this.onDecision(admitted, reason);
  }
}

// --- one room -------------------------------------------------------------------------------

export type OwnState = "pending" | "sent" | "failed";

export interface OwnMessage {
  localId: number;
  text: string;
  state: OwnState;
  seq: number | null;
  ts: number;
  error: string | null;
  /** Other fields of the type-1 body, inside the encryption (e.g. `cw`, a content warning). */
  extra?: Record<string, unknown>;
  /** Hex SHA-256 of the envelope last sealed for it (what `msg.hidden` names). */
  digest?: string;
}

export interface RoomListener {
  message(m: { seq: number; ts: number; senderId: string; pseudonym: string; text: string; extra: Record<string, unknown>; digest: string }): void;
  own(m: OwnMessage): void;
  undecryptable(m: { seq: number; ts: number; pseudonym: string; code: string }): void;
  joined(m: { seq: number; ts: number; memberId: string; pseudonym: string; role: string }): void;
  left(m: { seq: number; ts: number; memberId: string; pseudonym: string; reason: string }): void;
  renamed(m: { seq: number; ts: number; memberId: string; pseudonym: string; old: string }): void;
  members(): void;
  typing(memberId: string, pseudonym: string, on: boolean): void;
  reconnected(resumed: boolean, gap: boolean): void;
  ended(reason: string): void;
  flagged(pseudonym: string): void;
  /** The room's settings changed (lock, pause, slow mode, Q&A, rules). */
  updated?(): void;
  /** A message was hidden for everyone (reports or a reviewer), or restored. */
  hidden?(digest: Uint8Array, hidden: boolean): void;
  /** The pin changed: `new` (log "<name> pinned a message"), `resent` (same pin, no log line),
   * `waiting` (not readable yet), `cleared` (by `by`), `gone` (silently, e.g. on a rejoin). */
  pinned?(pin: Pin | null, how: "new" | "resent" | "waiting" | "cleared" | "gone", pseudonym: string): void;
  /** We hold a seat (joined or rejoined): the UI may keep it for a reload. */
  seated?(link: RoomLink, seat: SeatInfo): void;
  /** The server held a message back (`rate_limited`, slow mode): it goes again in `seconds`. */
  throttled?(seconds: number): void;
}

/** What reporting a received message needs (docs/protocol.md, report.send): the envelope as
 * delivered, the server's `ts` and `stamp` from its `msg` push, and what opening it revealed (the
 * franking key and the franked body `u8 type ‖ u64 client_ts ‖ body`). Kept in memory for the
 * last MAX_EVIDENCE messages of others; the newest KEPT_EVIDENCE go into the tab's snapshot for a
 * reload (docs/e2ee.md §19), next to the conversation they would prove. */
export interface Evidence {
  env: Uint8Array;
  ts: number;
  stamp: Uint8Array;
  frankingKey: Uint8Array;
  body: Uint8Array;
}

interface OwnRecord {
  msg: OwnMessage;
  /** A pin (sent with `pin: true`, never shown as an own message): settles when sequenced. */
  pin?: { done: (error: string | null) => void };
  env: Uint8Array | null;
  digest: string | null;
  generation: number;
  epoch: number;
}

/** A tiny async mutex: every state change of a room runs one at a time, in order. */
class Serial {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}

export class RoomSession {
  readonly roomId: string;
  memberId = "";
  pseudonym = "";
  role = "";
  kind = "";
  topic: string | null = null;
  title: string | null = null;
  visibility = "";
  /** Seconds after which messages vanish from every screen (0: they stay); set at creation. */
  disappearAfterS = 0;
  seq = 0;
  closed = false;
  members = new Map<string, MemberInfo>();
  crypto: RoomCrypto | null = null;
  /** The room view from the server (lock state, pause, slow mode, schedule, badge), kept current. */
  view: Record<string, any> = {};
  /** Staff-only pushes (lobby.waiting, report, qa.question), for the host console. */
  staff: ((name: string, data: Record<string, any>) => void) | null = null;
  /** An identity to join with (an admitted waiter's, or a stored seat's): the card a host signed.
   * `keep`: a lobby room's admitted card, kept for rejoins so the server lets us back in. */
  preset: { seeds: Seeds; cardMs: number; keep?: boolean } | null = null;
  /** The person read and accepted the room's ground rules (sent with `room.join`). */
  acceptRules = false;
  /** The room's pin, if any (readable, or waiting for the keys). */
  pinned: Pin | null = null;
  /** `msg` pushes (and pins) dropped because their `from` is not the sender that signed the
   * envelope: a server or a backend writer relabelled them. */
  forged = 0;
  /** `member.left` pushes dropped because they do not move the epoch forward (a replay or a
   * forgery: every departure bumps the epoch). */
  staleLeft = 0;
  /** Private rooms: member views refused because no valid member link proof vouched for their
   * card (the server, which never sees the link secret, added them). */
  unproven = 0;
  /** Members refused because they were removed from this room earlier (a server handing back a
   * removed member's old card and admission). */
  returned = 0;
  /** Member views whose card does not derive the member id they name (a server pairing a real
   * member's id, and its proofs, with a ghost's card). */
  cardMismatch = 0;
  /** `member.updated` pushes about someone never admitted (an update cannot list a new card). */
  unknownMember = 0;
  // Member ids removed from this room while we watched: never admitted again, whatever admission
  // a server hands back (a removed person must knock again with a new identity).
  #removed = new Set<string>();
  /** Moderator or co-host roles claimed by the server's member views without a valid statement
   * signed by a trusted host: shown and treated as plain members. */
  unprovenRoles = 0;
  #identity: Identity | null = null;
  #seeds: Seeds | null = null;
  #cardMs = 0;
  #repinTimer: number | undefined;
  #token: Uint8Array = new Uint8Array(0);
  #generation = 0;
  #ready = false;
  #stash: Array<[string, Record<string, any>]> = [];
  #waiting = new Map<number, Record<string, any>>();
  // Messages whose sender key has not arrived yet, set aside per sender (in seq order), so that
  // one sender's missing or bogus chain never holds anyone else's messages back.
  #held = new Map<string, Array<Record<string, any>>>();
  #heldUntil = new Map<string, number>();
  #heldTimer: number | undefined;
  /** Ordered pushes skipped because they were malformed (a missing field, a wrong type). */
  malformed = 0;
  #gapTimer: number | undefined;
  #keys: Array<[number, Record<string, any>]> = [];
  #own = new Map<string, OwnRecord>(); // digest -> record
  #queue: OwnRecord[] = [];
  #outbox: Array<[Uint8Array, Uint8Array]> = [];
  #serial = new Serial();
  #sending = false;
  #localIds = 0;
  #offlineSince: number | null = null;
  #offlineTimer: number | undefined;
  #lastTypingSent = 0;
  /** Report evidence by envelope digest (hex), oldest first, at most MAX_EVIDENCE. */
  #evidence = new Map<string, Evidence>();

  constructor(
    readonly conn: Connection,
    readonly link: RoomLink,
    public nickname: string | undefined,
    readonly listener: RoomListener,
  ) {
    this.roomId = link.roomId;
  }

  get epoch(): number {
    return this.crypto?.epoch ?? 0;
  }
  get secret(): RoomSecret | null {
    return this.link.secret;
  }
  inviteLink(): string {
    return this.link.secret ? privateLink(this.conn.origin, this.link.secret) : listedLink(this.conn.origin, this.roomId);
  }
  safetyCode(): string {
    return this.crypto ? this.crypto.safetyCode() : "";
  }

  // joining and resuming

  async join(): Promise<void> {
    const seed = this.link.hostSeed;
    const preset = this.preset;
    if (!preset?.keep) this.preset = null; // a later fresh rejoin gets a fresh identity
    const seeds = seed ? { ed: seed.slice(0, 32), x: seed.slice(32) } : (preset?.seeds ?? newSeeds());
    const identity = Identity.fromSeeds(seeds.ed, seeds.x);
    const roomKey = unb64id(this.roomId);
    const joinedCardMs = preset?.cardMs ?? Date.now();
    let cardMs: number | undefined = joinedCardMs;
    // The card must be the one the host signed: same identity, same creation time.
    const crypto = new RoomCrypto(identity, roomKey, {
      nowMs: () => {
        const t = cardMs ?? Date.now();
        cardMs = undefined;
        return t;
      },
    });
    this.#identity = identity;
    this.#seeds = seeds;
    this.#cardMs = joinedCardMs;
    this.#stash = []; // pushes of a seat given up before this join
    const payload: Record<string, unknown> = { room_id: this.roomId, card: crypto.card };
    if (this.nickname) payload["nickname"] = this.nickname;
    if (this.acceptRules) payload["accept_rules"] = true;
    Object.assign(payload, await answerChallenge(this.conn, this.roomId, identity, this.link.secret));
    // Private rooms: vouch with the link key for our member id; the other members check it.
    if (this.link.secret) payload["member_proof"] = signMember(this.link.secret, identity.memberId);
    this.#ready = false;
    const ack = await this.conn.request("room.join", payload);
    let trusted: Trusted;
    try {
      trusted = this.#trust(ack["room"]);
    } catch (e) {
      this.#leaveQuietly(); // we took a seat in a room we refuse: give it back
      throw e;
    }
    await this.#serial.run(async () => {
      this.#generation++;
      this.crypto = crypto;
      this.#outbox = [];
      this.#waiting.clear();
      this.#held.clear();
      this.#heldUntil.clear();
      this.#keys = [];
      this.memberId = b64id(identity.memberId);
      this.#token = ack["you"]["token"] as Uint8Array;
      this.members.clear();
      await this.#resetMembers(ack, trusted);
      this.seq = Number(ack["seq"]);
      this.#ready = true;
    });
    this.listener.members();
    const seat = this.seat();
    if (seat) this.listener.seated?.(this.link, seat);
    await this.#replayStash();
    this.#kick();
  }

  /** What it takes to come back to this seat after a reload (kept by the UI in sessionStorage). */
  seat(): SeatInfo | null {
    if (!this.#seeds || !this.memberId) return null;
    const lobby = this.#lobby && this.memberId !== this.#hostId;
    return { seeds: this.#seeds, cardMs: this.#cardMs, nickname: this.nickname, memberId: this.memberId, token: this.#token, admitted: lobby };
  }

  /** What a reload needs to come back to this very seat and read on (docs/e2ee.md §19): the seat,
   * the checked membership, the crypto state (without our sending chain: RoomCrypto.exportState),
   * the stream position and what we had not sent yet. Taken in the serial queue, so the position
   * and the chains always agree; a snapshot older than the last push only means the resume after
   * the reload replays more. Report evidence is not in it (memory only, see Evidence). */
  snapshot(): Promise<SavedRoom | null> {
    return this.#serial.run(() => {
      if (this.closed || !this.crypto || !this.#seeds || !this.memberId) return null;
      const unsent = this.#queue.filter((r) => !r.pin && r.msg.state !== "sent");
      return {
        v: 1,
        seeds: { ed: this.#seeds.ed, x: this.#seeds.x },
        cardMs: this.#cardMs,
        memberId: this.memberId,
        token: this.#token,
        seq: this.seq,
        crypto: this.crypto.exportState(),
        members: [...this.members],
        removed: [...this.#removed],
        view: this.view,
        pseudonym: this.pseudonym,
        role: this.role,
        nickname: this.nickname ?? null,
        lobby: this.#lobby,
        hostId: this.#hostId,
        hostCard: this.#hostCard,
        charter: this.#charter,
        pinned: this.pinned,
        localIds: this.#localIds,
        unsent: unsent.map((r) => ({ localId: r.msg.localId, text: r.msg.text, ts: r.msg.ts, extra: r.msg.extra ?? {}, env: r.env, epoch: r.epoch })),
        held: [...this.#held].map(([sender, events]) => [sender, events]),
        evidence: [...this.#evidence].slice(-KEPT_EVIDENCE),
      };
    });
  }

  /** A reload, first half: take back a snapshot() (nothing is sent; the page can show the room).
   * Throws ChatError `bad_state` on a snapshot that does not fit. comeBack() then resumes. */
  async load(saved: SavedRoom): Promise<void> {
    await this.#serial.run(() => {
      const identity = Identity.fromSeeds(saved.seeds.ed, saved.seeds.x);
      if (b64id(identity.memberId) !== saved.memberId) throw new ChatError("bad_state", "stored seat");
      let cardMs: number | undefined = saved.cardMs;
      const crypto = new RoomCrypto(identity, unb64id(this.roomId), {
        nowMs: () => {
          const t = cardMs ?? Date.now();
          cardMs = undefined;
          return t;
        },
      });
      crypto.restoreState(saved.crypto);
      this.#identity = identity;
      this.#seeds = saved.seeds;
      this.#cardMs = saved.cardMs;
      this.preset = { seeds: saved.seeds, cardMs: saved.cardMs, keep: true };
      this.crypto = crypto;
      this.memberId = saved.memberId;
      this.#token = saved.token;
      this.seq = saved.seq;
      this.members = new Map(saved.members);
      this.#removed = new Set(saved.removed);
      this.view = saved.view;
      this.kind = String(saved.view["kind"] ?? "");
      this.topic = saved.view["topic"] ?? null;
      this.visibility = String(saved.view["visibility"] ?? "");
      this.disappearAfterS = Number(saved.view["disappear_after_s"] ?? 0);
      this.pseudonym = saved.pseudonym;
      this.#lobby = saved.lobby;
      this.#hostId = saved.hostId;
      this.#hostCard = saved.hostCard;
      this.#charter = saved.charter;
      this.pinned = saved.pinned;
      this.#localIds = saved.localIds;
      this.#evidence = new Map(Array.isArray(saved.evidence) ? saved.evidence : []);
      if (this.link.secret && saved.view["title"]) {
        try {
          this.title = openMeta(this.link.secret.metaKey, this.link.secret.roomId, saved.view["title"]);
        } catch {
          this.title = null;
        }
      }
      this.role = typeof saved.role === "string" ? saved.role : (this.members.get(this.memberId)?.claimedRole ?? "member");
      const now = Date.now();
      for (const [sender, events] of saved.held) {
        this.#held.set(sender, events);
        this.#heldUntil.set(sender, now + KEY_WAIT_MS);
      }
      for (const u of saved.unsent) {
        const msg: OwnMessage = { localId: u.localId, text: u.text, state: "pending", seq: null, ts: u.ts, error: null, extra: u.extra };
        const rec: OwnRecord = { msg, env: u.env, digest: null, generation: this.#generation, epoch: u.env ? u.epoch : -1 };
        if (u.env) {
          rec.digest = hex(sha256(u.env));
          msg.digest = rec.digest;
          this.#own.set(rec.digest, rec);
        }
        this.#queue.push(rec);
      }
    });
  }

  /** A reload, second half: resume the seat load() took back, reading on from its position (the
   * server replays what came meanwhile; our unsent messages go out once, matched by envelope digest
   * when the server already has them). When the seat is gone the usual fresh join runs (the same
   * identity: the card is kept); a room that is gone throws. */
  async comeBack(): Promise<void> {
    for (const rec of this.#queue) this.listener.own(rec.msg);
    for (let tries = 0; ; tries++) {
      try {
        await this.resume();
        break;
      } catch (e) {
        // The seat is still attached to the page we reloaded from, until the server sees it go.
        if (!(e instanceof ChatError && e.code === "already_member") || tries >= 20) throw e;
        await sleep(250);
      }
    }
    if (this.closed) throw new ChatError("room_not_found", describeError("room_not_found"));
  }

  async resume(): Promise<void> {
    if (this.closed || !this.crypto || !this.#identity) return;
    this.#ready = false;
    const ack = await this.#resumeCall();
    if (ack && ack.ok) {
      let gap = Boolean(ack["gap"]);
      let trusted: Trusted;
      try {
        trusted = this.#trust(ack["room"]);
      } catch (e) {
        this.#leaveQuietly();
        this.#close(e instanceof ChatError ? e.code : "bad_charter");
        return;
      }
      const cursor = await this.#serial.run(async () => {
        for (const key of (ack["keys"] as Record<string, any>[]) ?? []) await this.#onKey(key);
        if (gap) await this.#resync(ack, trusted);
        return gap ? this.seq : await this.#takePage(ack["events"], this.seq);
      });
      if (!gap) gap = await this.#catchUp(ack, trusted, cursor);
      await this.#serial.run(() => {
        this.#ready = true;
      });
      await this.#replayStash();
      this.#online();
      this.listener.members();
      this.listener.reconnected(true, gap);
      this.#kick();
      return;
    }
    const code = ack?.error?.code;
    if (code === "already_member") throw new ChatError("already_member", "seat still held");
    // The seat is gone (grace passed, room ended or a wrong token): join again, fresh.
    this.#stash = [];
    try {
      await this.join();
    } catch (e) {
      if (e instanceof ChatError && e.code === "connection_lost") throw e;
      this.#close(e instanceof ChatError ? e.code : "rejoin_failed");
      return;
    }
    this.#online();
    this.listener.reconnected(false, true);
  }

  /** room.challenge then room.resume on this connection; the answer of the last one asked. A
   * refusal that says "not now" (`unavailable`: the backend is briefly unreachable; `rate_limited`)
   * keeps the seat: asked again with backoff, for as long as the connection holds. Only one that
   * says the seat is gone (`resume_failed`, the room ended) leads to a fresh join. */
  async #resumeCall(): Promise<Ack> {
    let delay = RESUME_RETRY_MS;
    for (;;) {
      let ack: Ack;
      try {
        // The seat is the card's key: sign a fresh challenge with the identity the seat holds.
        const challenged = await answerChallenge(this.conn, this.roomId, this.#identity!, null);
        ack = await this.conn.call("room.resume", {
          room_id: this.roomId,
          member_id: this.memberId,
          token: this.#token,
          seat_proof: challenged.seat_proof,
          epoch: this.crypto!.epoch,
          last_seq: this.seq,
        });
      } catch (e) {
        // A refused challenge: the room is gone, or "not now"; anything else reconnects and retries.
        if (!(e instanceof ChatError && (e.code === "room_not_found" || RETRY_LATER.has(e.code)))) throw e;
        ack = { ok: false, error: { code: e.code, message: e.message, ...(e.retryAfter === undefined ? {} : { retry_after: e.retryAfter }) } };
      }
      const code = ack?.error?.code;
      if ((ack && ack.ok) || !code || !RETRY_LATER.has(code) || this.closed) return ack;
      const waitMs = Math.max(Number(ack.error?.retry_after ?? 0) * 1000, delay);
      await sleep(Math.min(waitMs, RESUME_RETRY_MAX_MS) * (0.75 + Math.random() / 2));
      delay = Math.min(delay * 2, RESUME_RETRY_MAX_MS);
      if (!this.conn.connected) throw new ChatError("connection_lost", "The connection to the server was lost.");
    }
  }

  /** The missed events are lost: go on from the resume ack's snapshot (run in #serial). */
  async #resync(ack: Ack, trusted: Trusted): Promise<void> {
    this.#waiting.clear();
    await this.#resetMembers(ack, trusted);
    this.seq = Number(ack["seq"]);
  }

  /** Feed a page of missed events to the ordered stream (run in #serial); the highest seq received. */
  async #takePage(events: unknown, cursor: number): Promise<number> {
    for (const ev of (events as Record<string, any>[] | undefined) ?? []) {
      this.#receiveOrdered(String(ev["event"]), ev);
      if (typeof ev["seq"] === "number" && ev["seq"] > cursor) cursor = ev["seq"];
    }
    await this.#drain(); // page by page, so the pages never pile up as waiting events
    return cursor;
  }

  /** After a resume ack with `more`: the next pages (room.catchup), up to the ack's `seq` only (the
   * seat was attached before that snapshot: later events arrive as pushes, stashed meanwhile, so
   * MAX_WAITING never sees them). True when the buffer lost some meanwhile: handled as a gap. */
  async #catchUp(ack: Ack, trusted: Trusted, cursor: number): Promise<boolean> {
    const head = Number(ack["seq"]);
    let more = Boolean(ack["more"]);
    while (more && cursor < head) {
      const page = await this.#catchupPage(cursor);
      if (page["gap"]) {
        await this.#serial.run(() => this.#resync(ack, trusted));
        return true;
      }
      const after = cursor;
      cursor = await this.#serial.run(() => this.#takePage(page["events"], after));
      more = Boolean(page["more"]) && cursor > after; // an empty page ends it
    }
    return false;
  }

  /** One room.catchup; a rate-limited (or `unavailable`) one waits as told and asks again (a few
   * times). A refusal throws: the connection reconnects and resumes from `seq`. */
  async #catchupPage(afterSeq: number): Promise<Ack> {
    for (let tries = 1; ; tries++) {
      const page = await this.conn.call("room.catchup", { room_id: this.roomId, after_seq: afterSeq });
      const error = page?.error;
      if (page?.ok || !RETRY_LATER.has(error?.code ?? "") || tries >= CATCHUP_RATE_WAITS) return checked(page);
      const waitS = Math.min(Number(error?.retry_after ?? 1), 5);
      await new Promise((resolve) => window.setTimeout(resolve, waitS * 1000));
    }
  }

  offline(): void {
    this.#ready = false;
    if (this.#offlineSince === null) this.#offlineSince = Date.now();
    window.clearTimeout(this.#offlineTimer);
    this.#offlineTimer = window.setTimeout(() => this.#failQueued("Could not reach the server."), OFFLINE_FAIL_MS);
  }

  #online(): void {
    this.#offlineSince = null;
    window.clearTimeout(this.#offlineTimer);
  }

  /** The host id and lobby flag of a join or resume ack's room view (trustedRoom: the charter's in
   * a private room); once known, a later view must carry the same, or the room is refused. */
  #trust(view: unknown): Trusted {
    const trusted = trustedRoom(this.link.secret, view);
    if (this.link.secret) {
      const pinned = this.#charter;
      if (pinned && (pinned.hostId !== trusted.hostId || pinned.lobby !== trusted.lobby)) {
        throw new ChatError("bad_charter", describeError("bad_charter"));
      }
      this.#charter = trusted;
    }
    return trusted;
  }

  /** Give up a seat we refuse to use (best effort: the server drops it on disconnect anyway). */
  #leaveQuietly(): void {
    this.conn.call("room.leave", { room_id: this.roomId }).catch(() => undefined);
  }

  async #resetMembers(ack: Ack, trusted: Trusted): Promise<void> {
    const crypto = this.crypto!;
    const room = ack["room"];
    // The view's host and lobby are the trusted ones, so everything reading them (host labels,
    // the members console, a reload's seat) sees what the link key signed.
    this.view = { ...room, host_id: trusted.hostId, lobby: trusted.lobby };
    this.kind = String(room["kind"]);
    this.#lobby = trusted.lobby;
    this.#hostId = trusted.hostId;
    for (const m of ack["members"] as MemberView[]) {
      // The host's card is the one that derives the host id, not whatever the view labels so.
      if (m.member_id === this.#hostId && cardIdIs(m.card, this.#hostId)) this.#hostCard = m.card;
    }
    this.topic = room["topic"] ?? null;
    this.visibility = String(room["visibility"]);
    this.disappearAfterS = Number(room["disappear_after_s"] ?? 0);
    if (room["title"] && this.link.secret) {
      try {
        this.title = openMeta(this.link.secret.metaKey, this.link.secret.roomId, room["title"]);
      } catch {
        this.title = null;
      }
    }
    const current = new Set((ack["members"] as MemberView[]).map((m) => m.member_id));
    for (const id of [...this.members.keys()]) {
      if (!current.has(id)) {
        this.members.delete(id);
        crypto.removeMember(unb64id(id));
      }
    }
    const epoch = Number(room["epoch"]);
    if (epoch > crypto.epoch) crypto.setEpoch(epoch);
    // Roles are worked out afresh from this snapshot: what an earlier view said counts for nothing.
    for (const [id, info] of this.members) {
      info.role = this.#isOwner(id, info.card) ? "host" : "member";
      info.claimedRole = "member";
      info.roleProof = null;
    }
    // Admissions count only from trusted hosts, and co-hosts are trusted only once their signer
    // is: admit and promote in rounds until nothing changes (the order of the list is the
    // server's, so a co-host may come after the member it admitted or vouched for).
    const pending = (ack["members"] as MemberView[]).filter((m) => {
      if (!this.#removed.has(m.member_id)) return true;
      this.returned++;
      return false;
    });
    for (;;) {
      let progress = false;
      for (let i = 0; i < pending.length; ) {
        const m = pending[i]!;
        if (this.#admittedByHost(m)) {
          pending.splice(i, 1);
          this.#take(m);
          progress = true;
        } else i++;
      }
      if (this.#settleRoles()) progress = true;
      if (!progress) break;
    }
    this.#applyMember(ack["you"], false);
    this.#settleRoles();
    for (const [, info] of this.members) this.#countRole(info);
    await this.#retryKeys();
    this.#pinFromAck(room["pinned"]);
  }

  /** The pin in a join or resume ack: readable if we still hold its chain; a later joiner waits for
   * the pinner's re-send under the current keys. */
  #pinFromAck(push: unknown): void {
    if (!push || typeof push !== "object") {
      if (this.pinned) {
        this.pinned = null;
        this.listener.pinned?.(null, "gone", "");
      }
      return;
    }
    const p = push as Record<string, any>;
    const seq = Number(p["seq"] ?? 0);
    const label = String(p["from"]);
    if (this.pinned && this.pinned.seq >= seq) return;
    const env = p["env"];
    // The pinner is whoever signed the envelope; a pin relabelled by the server is dropped.
    const sender = env instanceof Uint8Array ? signedSender(env) : label;
    if (sender !== label) {
      this.#dropForged("pin");
      return;
    }
    if (env instanceof Uint8Array) {
      const own = sender === this.memberId ? this.#own.get(hex(sha256(env))) : undefined;
      let pin: Pin | null = null;
      try {
        if (own) pin = readPin(own.msg.text, { ...(own.msg.extra ?? {}) }, sender, seq);
        else if (sender !== this.memberId) {
          const opened = this.crypto!.decrypt(env);
          pin = readPin(opened.text ?? "", opened.extra, sender, seq);
        }
      } catch {
        pin = null;
      }
      if (pin) {
        this.pinned = pin;
        this.listener.pinned?.(pin, "resent", this.#name(sender));
        return;
      }
    }
    this.pinned = { pinId: null, text: "", links: [], senderId: sender, seq, readable: false };
    this.listener.pinned?.(this.pinned, "waiting", this.#name(sender));
  }

  /** Take a pin from a `msg` marked pin; false if the body is not a pin (shown as a message). */
  #takePin(sender: string, seq: number, text: string, body: Record<string, unknown>): boolean {
    const pin = readPin(text, body, sender, seq);
    if (!pin) return false;
    const resent = this.pinned?.readable === true && this.pinned.pinId === pin.pinId;
    this.pinned = pin;
    this.listener.pinned?.(pin, resent ? "resent" : "new", this.#name(sender));
    return true;
  }

  /** Someone joined: if it is our duty, re-send the pin under the current keys,
   * once, a second after the last such event. The duty is the pinner's while they are here, else the
   * first host or moderator's in join order. */
  #scheduleRepin(): void {
    const pin = this.pinned;
    if (!pin || !pin.readable || this.closed) return;
    let duty: boolean;
    if (this.members.has(pin.senderId)) duty = pin.senderId === this.memberId;
    else {
      const staff = [...this.members.entries()].filter(([, m]) => m.role === "host" || m.role === "moderator");
      duty = staff.length > 0 && staff[0]![0] === this.memberId;
    }
    if (!duty) return;
    window.clearTimeout(this.#repinTimer);
    this.#repinTimer = window.setTimeout(() => {
      const current = this.pinned;
      if (current?.readable && current.pinId && !this.closed) void this.#sendPin(current.text, current.links, current.pinId).catch(() => undefined);
    }, REPIN_DELAY_MS);
  }

  /** Pin a message, optionally with a resource list (hosts and moderators). */
  pin(text: string, links: PinLink[] = []): Promise<void> {
    return this.#sendPin(text, links, newPinId());
  }
  async unpin(): Promise<void> {
    await this.control("pin.clear");
  }

  #sendPin(text: string, links: PinLink[], pinId: string): Promise<void> {
    const extra: Record<string, unknown> = { pin_id: pinId };
    if (links.length) extra["links"] = links.map((l) => ({ label: l.label, url: l.url }));
    return new Promise((resolve, reject) => {
      const msg: OwnMessage = { localId: ++this.#localIds, text, state: "pending", seq: null, ts: Date.now(), error: null, extra };
      const done = (error: string | null) => (error === null ? resolve() : reject(new ChatError("pin_failed", error)));
      this.#queue.push({ msg, env: null, digest: null, generation: -1, epoch: -1, pin: { done } });
      this.#kick();
    });
  }

  // ordered pushes

  onPush(name: string, data: Record<string, any>): void {
    void this.#serial.run(async () => {
      if (this.closed) return;
      if (!this.#ready) {
        if (this.#stash.length < 10000) this.#stash.push([name, data]);
        return;
      }
      if (name === "key") {
        await this.#onKey(data);
        if (this.#held.size) this.#releaseHeld(Date.now());
        await this.#drain();
      } else if (name === "typing") {
        const id = String(data["member_id"]);
        if (id !== this.memberId) this.listener.typing(id, this.#name(id), Boolean(data["on"]));
      } else {
        this.#receiveOrdered(name, data);
        await this.#drain();
      }
    }).catch((e) => console.error("push not applied", e));
  }

  async #replayStash(): Promise<void> {
    const stash = this.#stash;
    this.#stash = [];
    for (const [name, data] of stash) this.onPush(name, data);
    await this.#serial.run(() => this.#drain());
  }

  #receiveOrdered(name: string, data: Record<string, any>): void {
    const seq = data["seq"];
    if (typeof seq !== "number" || seq <= this.seq) return;
    this.#waiting.set(seq, { ...data, event: name });
    if (this.#waiting.size > MAX_WAITING) {
      this.seq = Math.min(...this.#waiting.keys()) - 1;
    }
  }

  async #drain(): Promise<void> {
    while (!this.closed && this.#waiting.has(this.seq + 1)) {
      const ev = this.#waiting.get(this.seq + 1)!;
      let applied: boolean;
      try {
        applied = await this.#apply(ev);
      } catch {
        // A malformed push is skipped, never retried: whatever a server sends, the stream goes on.
        this.malformed++;
        applied = true;
      }
      if (!applied) return; // an epoch change waits for held messages; their timer drains again
      this.#waiting.delete(this.seq + 1);
      this.seq += 1;
    }
    if (this.#waiting.size && this.#gapTimer === undefined && !this.#waiting.has(this.seq + 1)) {
      // A hole on a live connection: pushes were lost. Resume if it does not fill soon.
      this.#gapTimer = window.setTimeout(() => {
        this.#gapTimer = undefined;
        if (this.#ready && this.#waiting.size && !this.#waiting.has(this.seq + 1)) this.conn.forceReconnect();
      }, KEY_WAIT_MS);
    }
  }

  async #apply(ev: Record<string, any>): Promise<boolean> {
    const name = ev["event"];
    const seq = Number(ev["seq"]);
    const ts = Number(ev["ts"] ?? 0);
    // A time that is not an integer makes the push malformed (skipped by #drain), as in Python.
    if (!Number.isSafeInteger(ts)) throw new TypeError("a push whose ts is not an integer");
    const crypto = this.crypto!;
    if (name === "msg") return this.#applyMsg(ev, seq, ts);
    if (name === "member.left" && this.#held.size) {
      // The epoch is about to move and take this epoch's chains with it: give held messages
      // their (bounded) chance to open first.
      this.#releaseHeld(Date.now());
      if (this.#held.size) return false;
    }
    if (name === "member.joined") {
      const m = ev["member"] as MemberView;
      if (!(m?.card instanceof Uint8Array)) throw new TypeError("a member view without a card");
      const admitted = this.#admit(m);
      const info = admitted ? this.members.get(m.member_id) : undefined;
      if (info) this.#countRole(info);
      await this.#retryKeys();
      this.listener.members();
      if (info && m.member_id !== this.memberId) {
        this.#scheduleRepin();
        this.listener.joined({ seq, ts, memberId: m.member_id, pseudonym: m.pseudonym, role: info.role });
      }
    } else if (name === "member.left") {
      // Every departure bumps the epoch: one that does not is a replay or a forgery (it would let
      // a server take a member out and back in at the same epoch and replay its old envelopes).
      const epoch = ev["epoch"];
      if (typeof epoch !== "number" || !Number.isInteger(epoch) || epoch <= crypto.epoch || epoch > 0xffffffff) {
        this.staleLeft++;
        console.warn("chatserver: dropped a member.left that does not move the epoch forward");
        return true;
      }
      const id = String(ev["member_id"]);
      const info = this.members.get(id);
      if (ev["reason"] === "removed") this.#removed.add(id);
      this.members.delete(id);
      crypto.removeMember(unb64id(id));
      crypto.setEpoch(epoch);
      await this.#retryKeys();
      this.listener.members();
      if (id === this.memberId) {
        // Our own seat: "expired" and "disconnected" here mean we were away too long, not that the
        // room ended (a room's "expired" is a room.ended reason), so they get a reason of their own.
        const reason = String(ev["reason"]);
        this.#close(reason === "expired" || reason === "disconnected" ? "seat_lapsed" : reason);
      } else {
        this.listener.left({ seq, ts, memberId: id, pseudonym: info?.pseudonym ?? "Someone", reason: String(ev["reason"]) });
        // Our next message starts a new chain for the new epoch; its keys go out with it (see #seal).
        this.#kick();
      }
    } else if (name === "member.updated") {
      const m = ev["member"] as MemberView;
      // Only members we admitted (or ourselves): an update cannot list a card we refused.
      if (m.member_id !== this.memberId && !this.members.has(m.member_id)) {
        this.unknownMember++;
        return true;
      }
      const old = this.#name(m.member_id);
      this.#applyMember(m);
      this.listener.members();
      if (old !== m.pseudonym) this.listener.renamed({ seq, ts, memberId: m.member_id, pseudonym: m.pseudonym, old });
    } else if (name === "room.ended") {
      this.#close(String(ev["reason"]));
    } else if (name === "room.updated" || name === "session.updated") {
      for (const k of ["state", "paused", "slow_mode_s", "qa", "rules", "duration_s", "ends_at"]) if (k in ev) this.view[k] = ev[k];
      this.listener.updated?.();
    } else if (name === "pin.cleared") {
      this.pinned = null;
      window.clearTimeout(this.#repinTimer);
      this.listener.pinned?.(null, "cleared", this.#name(String(ev["by"])));
    } else if (name === "msg.hidden" && ev["digest"] instanceof Uint8Array) {
      this.listener.hidden?.(ev["digest"], Boolean(ev["hidden"]));
    }
    return true;
  }

  #dropForged(what: string): void {
    this.forged++;
    console.warn(`chatserver: dropped a ${what} whose sender label differs from its signed sender`);
  }

  #applyMsg(ev: Record<string, any>, seq: number, ts: number): boolean {
    const label = String(ev["from"]);
    const env = ev["env"];
    // The sender is the envelope's signed header (decrypt verifies it against that member's card),
    // never the push's `from`, which only the server vouches for.
    const sender = signedSender(env);
    if (!(env instanceof Uint8Array) || sender === null) {
      this.listener.undecryptable({ seq, ts, pseudonym: "someone", code: "malformed" });
      return true;
    }
    if (sender !== label) {
      this.#dropForged(ev["pin"] ? "pin" : "message");
      return true;
    }
    if (sender === this.memberId) {
      const rec = this.#own.get(hex(sha256(env)));
      if (rec) {
        this.#markSent(rec, seq, ts);
        if (ev["pin"]) this.#takePin(sender, seq, rec.msg.text, { ...(rec.msg.extra ?? {}) });
      }
      return true;
    }
    // Behind a held message of the same sender, or itself waiting for its key: set aside, and the
    // rest of the stream goes on.
    if (!this.#held.has(sender) && this.#openMsg(ev, sender, true)) return true;
    if (!this.#hold(sender, ev)) this.#openMsg(ev, sender, false);
    return true;
  }

  #hold(sender: string, ev: Record<string, any>): boolean {
    const queue = this.#held.get(sender) ?? [];
    if (queue.length >= MAX_HELD_PER_SENDER) return false;
    if (!queue.length) {
      this.#held.set(sender, queue);
      this.#heldUntil.set(sender, Date.now() + KEY_WAIT_MS);
    }
    queue.push(ev);
    this.#armHeldTimer();
    return true;
  }

  /** Open what the keys that arrived allow, in each sender's order; past a sender's wait, show
   * what still cannot be opened as undecryptable. */
  #releaseHeld(now: number): void {
    for (const [sender, queue] of [...this.#held]) {
      const expired = now >= (this.#heldUntil.get(sender) ?? 0);
      while (queue.length && this.#openMsg(queue[0]!, sender, !expired)) queue.shift();
      if (!queue.length) {
        this.#held.delete(sender);
        this.#heldUntil.delete(sender);
      }
    }
    this.#armHeldTimer();
  }

  #armHeldTimer(): void {
    window.clearTimeout(this.#heldTimer);
    this.#heldTimer = undefined;
    if (!this.#held.size || this.closed) return;
    const delay = Math.max(Math.min(...this.#heldUntil.values()) - Date.now(), 0);
    this.#heldTimer = window.setTimeout(() => {
      this.#heldTimer = undefined;
      void this.#serial.run(async () => {
        this.#releaseHeld(Date.now());
        await this.#drain();
      });
    }, delay + 10);
  }

  /** Open and show one message of `sender` (its envelope's signed sender); false, changing
   * nothing, when its chain is unknown and we are still `waiting` for the key. */
  #openMsg(ev: Record<string, any>, sender: string, waiting: boolean): boolean {
    const env = ev["env"] as Uint8Array;
    const seq = Number(ev["seq"]);
    const ts = Number(ev["ts"] ?? 0);
    try {
      const opened = this.crypto!.decrypt(env);
      if (ev["pin"] && this.#takePin(sender, seq, opened.text ?? "", opened.extra)) return true;
      const digest = hex(sha256(env));
      const stamp = ev["stamp"];
      if (stamp instanceof Uint8Array && stamp.length === STAMP_BYTES && Number.isSafeInteger(ev["ts"])) {
        this.#keepEvidence(digest, { env, ts: Number(ev["ts"]), stamp, frankingKey: opened.frankingKey, body: opened.reportBody });
      }
      this.listener.message({
        seq,
        ts,
        senderId: sender,
        pseudonym: this.#name(sender),
        text: opened.text ?? "",
        extra: opened.extra,
        digest,
      });
    } catch (e) {
      const code = e instanceof E2EEError ? e.code : "malformed";
      if (code === "unknown_chain" && waiting) return false;
      this.listener.undecryptable({ seq, ts, pseudonym: this.#name(sender), code });
    }
    return true;
  }

  // reports

  #keepEvidence(digest: string, ev: Evidence): void {
    this.#evidence.delete(digest);
    this.#evidence.set(digest, ev);
    while (this.#evidence.size > MAX_EVIDENCE) this.#evidence.delete(this.#evidence.keys().next().value as string);
  }

  /** The kept evidence of a received message (by hex envelope digest), or null: never kept (our
   * own, no stamp), pushed out by newer messages, or past the room's disappearing time. */
  evidence(digest: string): Evidence | null {
    const ev = this.#evidence.get(digest);
    if (!ev) return null;
    if (this.disappearAfterS > 0 && ev.ts + this.disappearAfterS * 1000 < Date.now()) {
      this.#evidence.delete(digest);
      return null;
    }
    return ev;
  }

  /** How many messages' evidence is kept now (at most MAX_EVIDENCE). */
  get evidenceCount(): number {
    return this.#evidence.size;
  }

  canReport(digest: string): boolean {
    return this.evidence(digest) !== null;
  }

  /** Report a received message to the room's hosts (`report.send`) with a reason from the
   * server's list; the server verifies the stamp, the franking commitment and the sender's
   * signature. Resolves with the ack's reporter count and whether the message is now hidden;
   * throws ChatError (`no_evidence` when nothing is kept for it, or the server's refusal). */
  async report(digest: string, reason: string): Promise<{ reporters: number; hidden: boolean }> {
    const ev = this.evidence(digest);
    if (!ev) throw new ChatError("no_evidence", "Only received messages can be reported.");
    const ack = await this.control("report.send", {
      env: ev.env,
      ts: ev.ts,
      stamp: ev.stamp,
      franking_key: ev.frankingKey,
      body: ev.body,
      reason,
    });
    return { reporters: Number(ack["reporters"] ?? 1), hidden: Boolean(ack["hidden"]) };
  }

  // sender keys

  async #onKey(data: Record<string, any>): Promise<void> {
    const skd = data["skd"];
    if (!this.crypto || !(skd instanceof Uint8Array)) return;
    try {
      await this.crypto.receiveKeyShare(skd);
    } catch (e) {
      const code = e instanceof E2EEError ? e.code : "malformed";
      if (code === "future_epoch" || code === "wrong_sender") {
        this.#keys.push([Date.now() + KEY_WAIT_MS, data]);
        while (this.#keys.length > 256) this.#keys.shift();
      } else if (code === "equivocation") {
        // Name the member who signed the key share, not whom the push's `from` names.
        let signer = String(data["from"]);
        try {
          signer = b64id(parseSkd(skd).senderId);
        } catch {
          // unreachable: the share parsed before it was found equivocating
        }
        this.listener.flagged(this.#name(signer));
      }
    }
  }

  async #retryKeys(): Promise<void> {
    const now = Date.now();
    const keys = this.#keys;
    this.#keys = [];
    for (const [deadline, data] of keys) if (deadline >= now) await this.#onKey(data);
  }

  /** Send the queued key shares in order, in `key.send` batches (one request for many members). */
  async #flushOutbox(): Promise<void> {
    while (this.#outbox.length) {
      const batch = nextKeyBatch(this.#outbox);
      const shares = batch.map(([recipient, skd]) => ({ to: b64id(recipient), skd }));
      const ack = await this.conn.call("key.send", { room_id: this.roomId, shares });
      const code = ack.ok ? null : ack.error?.code;
      if (code === "rate_limited" || code === "unavailable") {
        // Keep the shares queued: without them the recipients could not open what follows.
        await sleep((ack.error?.retry_after ?? 1) * 1000);
        continue;
      }
      if (code) console.info(`chatserver: sender keys not delivered (${String(code).slice(0, 32)})`);
      const refused = ack.ok && Array.isArray(ack["refused"]) ? (ack["refused"] as unknown[]) : [];
      for (const r of refused) {
        const why = r && typeof r === "object" ? (r as Record<string, unknown>)["code"] : null;
        // The recipient left or the epoch moved on: that share is no longer needed.
        if (why !== "unknown_recipient" && why !== "stale_epoch") {
          console.info(`chatserver: a sender key was not delivered (${String(why).slice(0, 32)})`);
        }
      }
      if (batch.every((entry, i) => this.#outbox[i] === entry)) this.#outbox.splice(0, batch.length);
    }
  }

  // sending

  /** Queue one message; the UI shows it at once as pending, then sent (or failed, with retry). */
  send(text: string, extra: Record<string, unknown> = {}): OwnMessage {
    const msg: OwnMessage = { localId: ++this.#localIds, text, state: "pending", seq: null, ts: Date.now(), error: null, extra };
    this.#queue.push({ msg, env: null, digest: null, generation: -1, epoch: -1 });
    this.listener.own(msg);
    this.#kick();
    if (!this.conn.connected && this.#offlineSince === null) this.offline();
    return msg;
  }

  /** Send a failed message again; false when this session does not hold it (e.g. after a reload). */
  retry(localId: number): boolean {
    const rec = [...this.#failed].find((r) => r.msg.localId === localId);
    if (!rec) return false;
    this.#failed.delete(rec);
    rec.msg.state = "pending";
    rec.msg.error = null;
    this.#queue.push(rec);
    this.listener.own(rec.msg);
    if (!this.conn.connected) this.offline();
    this.#kick();
    return true;
  }

  #failed = new Set<OwnRecord>();

  #failQueued(reason: string): void {
    if (this.conn.connected && this.#ready) return;
    for (const rec of this.#queue) this.#fail(rec, reason);
    this.#queue = [];
  }

  #fail(rec: OwnRecord, reason: string): void {
    rec.msg.state = "failed";
    rec.msg.error = reason;
    if (rec.pin) {
      rec.pin.done(reason);
      return;
    }
    this.#failed.add(rec);
    this.listener.own(rec.msg);
  }

  #markSent(rec: OwnRecord, seq: number, ts: number): void {
    if (rec.msg.state === "sent") return;
    rec.msg.state = "sent";
    rec.msg.seq = seq;
    rec.msg.ts = ts;
    rec.msg.error = null;
    this.#failed.delete(rec);
    this.#queue = this.#queue.filter((r) => r !== rec);
    if (rec.pin) rec.pin.done(null);
    else this.listener.own(rec.msg);
  }

  /** Run the send loop if it is not running. */
  #kick(): void {
    if (this.#sending || this.closed) return;
    this.#sending = true;
    void this.#sendLoop().finally(() => {
      this.#sending = false;
    });
  }

  async #sendLoop(): Promise<void> {
    let staleRetries = 0;
    let unavailableSince: number | null = null;
    while (!this.closed) {
      if (!this.conn.connected || !this.#ready) return; // resume() kicks us again
      try {
        if (!this.#queue.length) {
          await this.#serial.run(() => this.#flushOutbox());
          if (!this.#queue.length) return;
          continue; // a message queued while the key shares went out (its kick found us busy)
        }
        const rec = this.#queue[0]!;
        if (rec.msg.state === "sent") {
          this.#queue.shift();
          continue;
        }
        // Seal (again) when there is no envelope yet, or we rejoined, or the epoch moved on.
        await this.#serial.run(async () => {
          if (!rec.env || rec.generation !== this.#generation || rec.epoch !== this.epoch) {
            if (rec.digest) this.#own.delete(rec.digest);
            rec.env = this.crypto!.encrypt(encodeText(rec.msg.text, rec.msg.extra));
            rec.digest = hex(sha256(rec.env));
            rec.msg.digest = rec.digest;
            rec.generation = this.#generation;
            rec.epoch = this.epoch;
            this.#own.set(rec.digest, rec);
            while (this.#own.size > 1024) this.#own.delete(this.#own.keys().next().value as string);
            this.#outbox.push(...(await this.crypto!.pendingKeyShares()));
          }
          await this.#flushOutbox();
        });
        if ((rec.msg.state as OwnState) === "sent") continue;
        const payload: Record<string, unknown> = { room_id: this.roomId, env: rec.env! };
        if (rec.pin) payload["pin"] = true;
        const ack = await this.conn.call("msg.send", payload);
        if (ack.ok) {
          this.#markSent(rec, Number(ack["seq"]), Number(ack["ts"]));
          staleRetries = 0;
          unavailableSince = null;
          continue;
        }
        const err = ack.error!;
        if (err.code === "unavailable" && Date.now() - (unavailableSince ??= Date.now()) < OFFLINE_FAIL_MS) {
          // The backend is briefly unreachable: the message stays pending and the same envelope
          // goes again (never doubled: the server knows it by its digest if it took it after all).
          const waitMs = Math.min(Number(err.retry_after ?? 1) * 1000, RESUME_RETRY_MAX_MS);
          await sleep(waitMs * (0.75 + Math.random() / 2));
        } else if (err.code === "rate_limited") {
          this.listener.throttled?.(Number(err.retry_after ?? 1));
          await sleep((err.retry_after ?? 1) * 1000);
        } else if ((err.code === "stale_epoch" || err.code === "not_in_room") && staleRetries < 5) {
          staleRetries++;
          await sleep(300 * staleRetries); // the member.left with the new epoch is on its way
          rec.env = null;
        } else {
          this.#queue.shift();
          this.#fail(rec, describeError(err.code));
        }
      } catch (e) {
        if (e instanceof ChatError && (e.code === "connection_lost" || e.code === "timeout")) {
          if (e.code === "timeout") this.conn.forceReconnect();
          return; // the same envelope goes again after the resume: never doubled
        }
        const rec = this.#queue.shift();
        if (rec) this.#fail(rec, "This message could not be encrypted.");
        console.error(e);
      }
    }
  }

  async rename(nickname: string): Promise<void> {
    const ack = await this.conn.request("room.rename", { room_id: this.roomId, nickname });
    this.nickname = nickname;
    this.#applyMember(ack["you"]);
    this.listener.members();
  }

  typing(on: boolean): void {
    if (!this.conn.connected || !this.#ready) return;
    const now = Date.now();
    if (on && now - this.#lastTypingSent < 3000) return;
    this.#lastTypingSent = on ? now : 0;
    this.conn.call("typing", { room_id: this.roomId, on }).catch(() => undefined);
  }

  async leave(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.conn.connected) await this.conn.call("room.leave", { room_id: this.roomId }, 3000);
    } finally {
      this.#close("left", false);
    }
  }

  // ground rules and Q&A

  /** The ground rules' text (opened with the link's meta key in private rooms), or null. */
  rules(): string | null {
    return openRules(this.link.secret, this.view["rules"]);
  }
  /** Set the ground rules (hosts and moderators); an empty text removes them. */
  async setRules(text: string): Promise<void> {
    const rules = text ? sealRules(this.link.secret, text) : new Uint8Array(0);
    const ack = await this.control("room.settings", { rules });
    Object.assign(this.view, ack["room"] ?? {});
  }
  /** Muted until (seconds; Infinity: until unmuted), or null. */
  get mutedUntil(): number | null {
    return this.members.get(this.memberId)?.mutedUntil ?? null;
  }
  /** Q&A: sign the question with our card key and seal it to each host but us (nobody else can
   * open it, and a host checks it came from us: src/e2ee/question.ts); returns how many. */
  async ask(text: string, consent: boolean): Promise<number> {
    if (!this.#identity) throw new ChatError("not_in_room", "Not in the room.");
    const body = questionBody(text, consent);
    const roomKey = unb64id(this.roomId);
    const hosts = [...this.members.entries()].filter(([id, m]) => m.role === "host" && id !== this.memberId);
    for (const [hostId, m] of hosts) {
      const sealed = await sealQuestion(this.#identity, roomKey, parseCard(m.card, roomKey), body);
      await this.control("qa.ask", { to: hostId, sealed });
    }
    return hosts.length;
  }
  /** Open a `qa.question` push sealed to us; null unless it opens and is signed by the card of the
   * member the push names (the server's `from` alone proves nothing). */
  async openQuestion(data: Record<string, any>): Promise<Question | null> {
    const sealed = data["sealed"];
    if (!this.#identity || !(sealed instanceof Uint8Array)) return null;
    const from = String(data["from"]);
    const asker = this.members.get(from);
    if (!asker || from === this.memberId) return null;
    try {
      const roomKey = unb64id(this.roomId);
      const q = await openSealedQuestion(this.#identity, roomKey, parseCard(asker.card, roomKey), sealed);
      return { from, pseudonym: this.#name(from), text: q.text, consent: q.consent };
    } catch {
      console.warn("chatserver: a question did not open or was not signed by its asker; dropped");
      return null;
    }
  }
  /** Answer publicly, quoting the question (the asker named only if they agreed). */
  answer(q: Question, text: string): OwnMessage {
    const quote: Record<string, unknown> = { text: q.text };
    if (q.consent) quote["asker"] = q.pseudonym;
    return this.send(text, { quote });
  }

  // host and moderator controls (each refused by the server without the role)

  control(event: string, fields: Record<string, unknown> = {}): Promise<Ack> {
    // A role change carries our signed statement for exactly that member and role.
    if (event === "member.role" && !("role_proof" in fields)) return this.setRole(String(fields["member_id"]), String(fields["role"]));
    return this.conn.request(event, { room_id: this.roomId, ...fields });
  }
  /** Give a member a role (hosts): signed with our card key, so the other members can check that a
   * host gave it (src/e2ee/roles.ts); the server verifies it too (`bad_role_proof`). */
  setRole(memberId: string, role: string): Promise<Ack> {
    if (!this.#identity) return Promise.reject(new ChatError("not_in_room", "Not in the room."));
    const roleProof = signRole(this.#identity, unb64id(this.roomId), unb64id(memberId), role, Date.now());
    return this.conn.request("member.role", { room_id: this.roomId, member_id: memberId, role, role_proof: roleProof });
  }
  /** The room's owner seat (the trusted host id), or null for a peer room without one. */
  get ownerId(): string | null {
    return this.#hostId;
  }
  /** A member's trusted role ("host", "moderator" or "member"; "" for someone not in the room). */
  trustedRole(memberId: string): string {
    return this.members.get(memberId)?.role ?? "";
  }
  async lobbyList(): Promise<Array<Record<string, any>>> {
    return (await this.control("lobby.list"))["waiting"] as Array<Record<string, any>>;
  }
  /** Admit a waiter: sign its card with our per-room key (`u32 epoch ‖ Ed25519(DS("admit") ‖ room ‖ epoch ‖ card)`). */
  async admit(memberId: string, card: Uint8Array): Promise<void> {
    if (!this.#identity || !this.crypto) throw new ChatError("not_in_room", "Not in the room.");
    const epoch = this.crypto.epoch;
    const sig = this.#identity.sign(admissionMessage(unb64id(this.roomId), epoch, card));
    await this.control("lobby.admit", { member_id: memberId, admission: concat(u32(epoch), sig) });
  }
  async admitAll(): Promise<number> {
    const waiting = (await this.lobbyList()).filter((w) => w["status"] === "waiting");
    for (const w of waiting) await this.admit(String(w["member_id"]), w["card"] as Uint8Array);
    return waiting.length;
  }

  // members

  #lobby = false;
  #hostId: string | null = null;
  /** A private room's verified charter, as first seen: later views must say the same. */
  #charter: Trusted | null = null;
  #hostCard: Uint8Array | null = null;

  /** In a lobby room only members a host admitted (a host's signature over their card) get keys:
   * the server alone cannot slip a ghost member in. */
  #admittedByHost(m: MemberView): boolean {
    if (!this.#lobby || m.member_id === this.memberId) return true;
    if (m.member_id === this.#hostId && cardIdIs(m.card, this.#hostId)) return true; // the host seat
    const admission = m.admission;
    if (!(admission instanceof Uint8Array) || admission.length !== 4 + 64) return false;
    const epoch = new DataView(admission.buffer, admission.byteOffset, 4).getUint32(0);
    const message = admissionMessage(unb64id(this.roomId), epoch, m.card);
    const hosts = [this.#hostCard, ...[...this.members.values()].filter((x) => x.role === "host").map((x) => x.card)];
    for (const card of hosts) {
      if (!card) continue;
      try {
        if (ed25519Verify(parseCard(card).edPublic, admission.subarray(4), message)) return true;
      } catch {
        continue;
      }
    }
    return false;
  }

  /** In a private room only members whose card a link holder vouched for get keys: the proof is
   * the link key's signature over the card's member id, which the server cannot make. */
  #holdsTheLink(m: MemberView): boolean {
    const secret = this.link.secret;
    if (!secret || m.member_id === this.memberId) return true;
    // `#take` checked first that the card derives this id, so the proof over the id covers the
    // card: another member's valid proof cannot carry a ghost card in.
    return verifyMemberLinkProof(secret.joinPublic, secret.roomId, unb64id(m.member_id), m.member_proof);
  }

  /** Add a member's card (keys, listing); false when it is not admitted. */
  #admit(m: MemberView): boolean {
    if (this.#removed.has(m.member_id)) {
      this.returned++;
      console.warn("chatserver: ignored a member who was removed from this room");
      return false;
    }
    if (!this.#admittedByHost(m)) return false; // not admitted by a host: no keys, not shown
    return this.#take(m);
  }

  /** Add a member a host admitted (or who needs no admission), with its trusted role against the
   * current trusted hosts; false when its card is refused. */
  #take(m: MemberView): boolean {
    if (m.member_id !== this.memberId && !cardIdIs(m.card, m.member_id, unb64id(this.roomId))) {
      // In every room: the id a view names must be the one its card derives.
      this.cardMismatch++;
      console.warn("chatserver: ignored a member view whose card is not its member's");
      return false;
    }
    if (!this.#holdsTheLink(m)) {
      this.unproven++;
      console.warn("chatserver: ignored a member without a valid member link proof");
      return false; // no link holder vouched for it: no keys, not shown
    }
    if (m.member_id !== this.memberId && this.crypto) {
      try {
        this.crypto.addMember(m.card);
      } catch {
        return false; // a card that does not verify: not admitted, not shown
      }
    }
    if (m.member_id === this.#hostId && cardIdIs(m.card, this.#hostId)) this.#hostCard = m.card;
    this.members.set(m.member_id, this.#info(m, m.card));
    return true;
  }

  /** A member view as the UI sees it, its role checked against the current trusted hosts. */
  #info(m: MemberView, card: Uint8Array): MemberInfo {
    const claimedRole = String(m.role);
    const roleProof = m.role_proof instanceof Uint8Array ? m.role_proof : null;
    const role = this.#provenRole(m.member_id, claimedRole, roleProof, card);
    return { pseudonym: m.pseudonym, role, claimedRole, roleProof, card, mutedUntil: m.muted_until ?? null };
  }

  /** `count`: a refused role claim is counted (a snapshot counts once, after all its rounds). */
  #applyMember(m: MemberView, count = true): void {
    const known = this.members.get(m.member_id);
    const info = this.#info(m, known?.card ?? m.card);
    this.members.set(m.member_id, info);
    if (count) this.#countRole(info);
    if (m.member_id === this.memberId) {
      this.pseudonym = m.pseudonym;
      this.role = m.role; // our own controls follow the server's word: it enforces what we may do
    }
  }

  /** The room's owner: the member whose id is the (trusted) host id and whose card derives it. */
  #isOwner(id: string, card: unknown): boolean {
    return this.#hostId !== null && id === this.#hostId && cardIdIs(card, id);
  }

  /** The role we trust for a member: "host" for the owner; a claimed "moderator" or "host" only
   * when its statement verifies for exactly this room, member and role, under the card we hold of
   * another member we already trust as a host; anything else is "member". */
  #provenRole(id: string, claimed: string, proof: Uint8Array | null, card: Uint8Array): string {
    if (this.#isOwner(id, card)) return "host";
    if (claimed !== "moderator" && claimed !== "host") return "member";
    const signer = roleSigner(proof);
    if (!signer) return "member";
    const signerId = b64id(signer);
    const by = this.members.get(signerId);
    if (signerId === id || !by || by.role !== "host") return "member";
    try {
      const roomKey = unb64id(this.roomId);
      const memberId = parseCard(card, roomKey).memberId;
      if (b64id(memberId) !== id) return "member"; // the statement is over the card's own id
      const signerCard = parseCard(by.card, roomKey);
      if (b64id(signerCard.memberId) !== signerId) return "member";
      return verifyRole(signerCard.edPublic, roomKey, memberId, claimed, proof) ? claimed : "member";
    } catch {
      return "member";
    }
  }

  /** Promote every member whose claim now verifies, until nothing changes (co-hosts may vouch for
   * each other, in any order); true if any role changed. */
  #settleRoles(): boolean {
    let changed = false;
    for (let again = true; again; ) {
      again = false;
      for (const [id, info] of this.members) {
        if (info.role === info.claimedRole || info.role === "host") continue;
        const role = this.#provenRole(id, info.claimedRole, info.roleProof, info.card);
        if (role !== info.role) {
          info.role = role;
          again = changed = true;
        }
      }
    }
    return changed;
  }

  /** Count (and warn about, without names) a role the view claims but no trusted host signed. */
  #countRole(info: MemberInfo): void {
    if (info.claimedRole === "member" || info.role === info.claimedRole || info.role === "host") return;
    this.unprovenRoles++;
    console.warn("chatserver: a member's role is not signed by a host of the room; treated as a member");
  }

  #name(id: string): string {
    return this.members.get(id)?.pseudonym ?? "Someone who left";
  }

  #close(reason: string, notify = true): void {
    if (this.closed) return;
    this.closed = true;
    this.#ready = false;
    window.clearTimeout(this.#gapTimer);
    window.clearTimeout(this.#heldTimer);
    window.clearTimeout(this.#offlineTimer);
    window.clearTimeout(this.#repinTimer);
    for (const rec of this.#queue) this.#fail(rec, "The room is closed.");
    this.#queue = [];
    this.#evidence.clear();
    this.conn.rooms.delete(this.roomId);
    if (notify) this.listener.ended(reason);
  }
}

type Trusted = { hostId: string | null; lobby: boolean };

/** The card parses and derives the member id `id`. */
function cardIdIs(card: unknown, id: string, roomKey?: Uint8Array): boolean {
  if (!(card instanceof Uint8Array)) return false;
  try {
    return b64id(parseCard(card, roomKey).memberId) === id;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => window.setTimeout(r, ms));

/** Calm, human sentences for the codes a person may meet. */
export function describeError(code: string): string {
  const messages: Record<string, string> = {
    room_not_found: "This room is not open any more. It may have ended, or the server may have restarted.",
    room_ended: "This room has ended.",
    room_full: "This room is full right now.",
    room_locked: "This room is not taking new people right now.",
    host_absent: "This session has not started yet: its host is not here. Try again a little later.",
    join_proof_required: "This room is private. You need the full invitation link to join.",
    bad_proof: "This invitation link does not open this room. Ask for the full link again.",
    no_challenge: "Joining took too long to confirm. Please try again.",
    bad_seat_proof: "This device could not prove that this seat is yours. Please join again.",
    bad_charter: "This room's host could not be verified. Ask for a new link.",
    bad_member_proof: "This invitation link does not open this room. Ask for the full link again.",
    nickname_invalid: "That name cannot be used. Use 2 to 32 letters or digits.",
    nickname_taken: "Someone here already uses that name. Try another.",
    nickname_reserved: "That name looks like a role (such as therapist or moderator). Try another.",
    nickname_confusable: "That name looks too much like someone else's here. Try another.",
    invalid_topic: "That topic cannot be used. Use letters or digits, up to 64 characters.",
    rate_limited: "That was a lot at once. Wait a moment and try again.",
    muted: "You are muted in this room for now, so your messages cannot be sent.",
    paused: "The host paused the chat. You can write again when it resumes.",
    qa_only: "Q&A mode is on: only the hosts can post. Ask the host a question instead.",
    forbidden: "Your role does not allow that.",
    banned: "You cannot enter this room.",
    lobby_required: "This session has a waiting room: knock and wait for the host.",
    rules_not_accepted: "Accept the ground rules to enter.",
    invalid_schedule: "That time does not fit this session.",
    payload_too_large: "That is too long to send.",
    unavailable: "The server is busy. Try again in a moment.",
    connection_lost: "The connection was lost. Trying again…",
    timeout: "The server did not answer in time. Try again.",
    too_many_rooms: "You are in too many rooms at once.",
    room_exists: "A room like this already exists. Please try again.",
    host_required: "A session needs its host. Please create it again from the console.",
    already_member: "You are already in this room, perhaps in another tab.",
    not_member: "That person is no longer in this room.",
    not_in_room: "You are no longer in this room.",
    stale_epoch: "The room's keys just changed. Please send it again.",
    invalid_capacity: "That number of people is not allowed here.",
    invalid_title: "That name is too long.",
    invalid_join_key: "This private link could not be set up. Please start the room again.",
    invalid_duration: "That length of time cannot be used.",
    not_waiting: "That person is no longer waiting.",
    not_started: "The session has not started yet. You can let people in from its start time.",
    lobby_full: "The waiting room is full right now. Try again a little later.",
    invalid_rules: "These ground rules are too long. Please shorten them.",
    invalid_pin: "That is too long to pin.",
    bad_request: "The server could not take that request. Please reload the page and try again.",
    unknown_event: "This page is older than the server. Please reload it.",
    bad_role_proof: "That role change could not be signed. Please try again.",
    bad_card: "This device's key for the room was not accepted. Please join again.",
    bad_envelope: "This message could not be sent safely. Please reload the page.",
    bad_signature: "This message could not be signed. Please reload the page.",
    wrong_room: "This message was sealed for another room. Please reload the page.",
    wrong_sender: "This message was sealed for another person. Please reload the page.",
    replay: "This message was already sent once.",
    unknown_recipient: "That person has just left.",
    resume_failed: "Your seat could not be kept while you were away. Please join again.",
    rejoin_failed: "Your seat could not be kept while you were away. Please join again.",
    internal: "The server had a problem and changed nothing. Please try again.",
    not_signed_in: "Please sign in with your credential first.",
    credential_malformed: "This credential is damaged. Copy it again, in full.",
    credential_tampered: "This credential was not issued by this server, or it was changed.",
    credential_expired: "This credential has expired. Ask the operator for a new one.",
    credential_revoked: "This credential has been revoked. Ask the operator.",
    bad_badge: "Your therapist badge could not be attached to this session. Please sign in again.",
    bad_admission: "That admission could not be signed. Please try again.",
    bad_report: "This report could not be verified, so it was not sent.",
    unknown_reason: "Please pick one of the listed reasons.",
    not_staff: "Only the room's hosts and moderators can do that.",
    no_evidence: "This message can no longer be reported from this page.",
    pin_failed: "The message could not be pinned. Please try again.",
    bad_ack: "The server gave an answer this page did not expect. Please try again.",
    removed: "You were removed from this room.",
    left: "You left the room.",
    ended_by_host: "The host ended this room.",
    time_up: "The session reached its end time.",
    lifetime: "This room reached the end of its time and has closed.",
    expired: "This room has closed.",
    empty: "This room closed after everyone had left.",
    disconnected: "You were away too long and lost your seat in this room.",
  };
  return messages[code] ?? "That did not work. Please try again.";
}
