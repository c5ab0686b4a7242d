// RoomCrypto: one member's end-to-end state for one room (mirrors chatserver/e2ee/session.py and
// chain.py). No I/O: the caller moves bytes. SKD sealing/opening is async (HPKE via WebCrypto);
// callers must not interleave calls on one RoomCrypto (the room session serialises them).
import {
  KEY_LEN,
  MAX_BODY_LEN,
  MAX_CHAINS_PER_SENDER,
  MAX_TOMBSTONES_PER_SENDER,
  MAX_SKIP,
  MAX_SKIPPED_KEYS,
  MSG_TYPE_TEXT,
  ROTATE_AFTER_MESSAGES,
  ROTATE_AFTER_MS,
  SALT_LEN,
  SKIPPED_KEY_TTL_MS,
  U32_MAX,
} from "./constants.js";
import { E2EEError } from "./errors.js";
import {
  type EnvelopeHeader,
  type Identity,
  type KeyCard,
  frankedBody,
  openSkd,
  openWithKey,
  parseCard,
  parseEnvelope,
  parseSkd,
  parseTextBody,
  safetyCode,
  sealEnvelope,
  sealSkd,
  verifyEnvelope,
} from "./formats.js";
import { type Rng, ctEq, defaultRng, hex, hmacSha256, randomBytes, utf8 } from "./primitives.js";

const ONE = new Uint8Array([1]);
const TWO = new Uint8Array([2]);

export function chainStep(ck: Uint8Array): [Uint8Array, Uint8Array] {
  return [hmacSha256(ck, ONE), hmacSha256(ck, TWO)];
}

export function advance(ck: Uint8Array, steps: number): Uint8Array {
  for (let i = 0; i < steps; i++) ck = hmacSha256(ck, TWO);
  return ck;
}

/** Type-1 body: compact UTF-8 JSON {"text": ..., ...extra} (same bytes as Python's json.dumps).
 * encrypt() checks the result against the body profile (NaN, for one, becomes null here). */
export function encodeText(text: string, extra: Record<string, unknown> = {}): Uint8Array {
  return utf8(JSON.stringify({ text, ...extra }));
}

/** Parse a type-1 body under the body profile (docs/e2ee.md §6); any violation is `malformed`. */
export function decodeText(body: Uint8Array): { text: string; obj: Record<string, unknown> } {
  const obj = parseTextBody(body);
  return { text: obj["text"] as string, obj };
}

/** A peer's chain as RoomCrypto.exportState() keeps it. */
export interface ChainState {
  sender: Uint8Array;
  epoch: number;
  keyId: number;
  ck: Uint8Array;
  next: number;
  /** Unread skipped keys: [index, message key, when it was skipped (ms)]. */
  skipped: Array<[number, Uint8Array, number]>;
}

/** RoomCrypto.exportState(): plain data (numbers, strings, byte arrays) for the page to store. */
export interface CryptoState {
  v: 1;
  epoch: number;
  members: Uint8Array[];
  ownKeyIds: number[];
  chains: ChainState[];
  tombstones: Array<[string, number[]]>;
  flagged: string[];
}

export class SenderChain {
  sent = 0;
  shareIndex = -1;
  shareCk: Uint8Array = new Uint8Array(0);
  constructor(
    readonly epoch: number,
    readonly keyId: number,
    public ck: Uint8Array,
    public index: number,
    readonly createdMs: number,
  ) {
    this.checkpoint();
  }
  checkpoint(): void {
    this.shareIndex = this.index;
    this.shareCk = this.ck;
  }
  needsRotation(epoch: number, nowMs: number): boolean {
    return (
      epoch !== this.epoch ||
      this.sent >= ROTATE_AFTER_MESSAGES ||
      nowMs - this.createdMs >= ROTATE_AFTER_MS ||
      this.index >= U32_MAX
    );
  }
  nextKey(): [number, Uint8Array] {
    const [mk, ck] = chainStep(this.ck);
    this.ck = ck;
    const index = this.index;
    this.index += 1;
    this.sent += 1;
    return [index, mk];
  }
}

interface Plan {
  index: number;
  mk: Uint8Array;
  fromCache: boolean;
  newCk: Uint8Array;
  newNext: number;
  skipped: Array<[number, Uint8Array]>;
}

/** A peer's chain: `ck` is the chain key at `nextIndex`. For forward secrecy nothing kept here
 * derives a key of an index already read (no first chain key; `skipped` holds unread ones). */
export class ReceiverChain {
  skipped = new Map<number, [Uint8Array, number]>(); // insertion-ordered: oldest first
  constructor(
    readonly senderId: Uint8Array,
    readonly epoch: number,
    readonly keyId: number,
    public ck: Uint8Array,
    public nextIndex: number,
  ) {}

  expire(nowMs: number): void {
    for (const [i, [, t]] of [...this.skipped]) if (nowMs - t >= SKIPPED_KEY_TTL_MS) this.skipped.delete(i);
  }

  plan(index: number, nowMs: number): Plan {
    if (index < this.nextIndex) {
      const hit = this.skipped.get(index);
      if (hit === undefined || nowMs - hit[1] >= SKIPPED_KEY_TTL_MS) {
        throw new E2EEError("replay", "index already used or its key expired");
      }
      return { index, mk: hit[0], fromCache: true, newCk: this.ck, newNext: this.nextIndex, skipped: [] };
    }
    const jump = index - this.nextIndex;
    if (jump > MAX_SKIP) throw new E2EEError("too_far_ahead", `jump of ${jump} > ${MAX_SKIP}`);
    let ck = this.ck;
    const skipped: Array<[number, Uint8Array]> = [];
    for (let i = this.nextIndex; i < index; i++) {
      const [mk, next] = chainStep(ck);
      skipped.push([i, mk]);
      ck = next;
    }
    const [mk, next] = chainStep(ck);
    return { index, mk, fromCache: false, newCk: next, newNext: index + 1, skipped: skipped.slice(-MAX_SKIPPED_KEYS) };
  }

  commit(plan: Plan, nowMs: number): void {
    if (plan.fromCache) {
      this.skipped.delete(plan.index);
      return;
    }
    for (const [i, mk] of plan.skipped) this.skipped.set(i, [mk, nowMs]);
    while (this.skipped.size > MAX_SKIPPED_KEYS) {
      const oldest = this.skipped.keys().next().value as number;
      this.skipped.delete(oldest);
    }
    this.ck = plan.newCk;
    this.nextIndex = plan.newNext;
  }

  /** Does `chainKey` at `startIndex` lie on the chain we hold? Compared against `ck` at `nextIndex`:
   * the lower-positioned key is stepped forward (at most MAX_SKIP) and must equal the other. */
  consistentWith(startIndex: number, chainKey: Uint8Array): boolean {
    if (chainKey.length !== KEY_LEN) return false;
    let [loI, loCk, hiI, hiCk] = [this.nextIndex, this.ck, startIndex, chainKey];
    if (hiI < loI) [loI, loCk, hiI, hiCk] = [hiI, hiCk, loI, loCk];
    if (hiI - loI > MAX_SKIP) throw new E2EEError("too_far_ahead", "re-shared chain index too far from ours");
    return ctEq(advance(loCk, hiI - loI), hiCk);
  }
}

export interface Opened {
  header: EnvelopeHeader;
  senderId: Uint8Array;
  msgType: number;
  clientTsMs: number;
  body: Uint8Array;
  text: string | null;
  extra: Record<string, unknown>;
  frankingKey: Uint8Array;
  reportBody: Uint8Array;
}

export class RoomCrypto {
  readonly card: Uint8Array;
  readonly #identity: Identity;
  readonly #roomId: Uint8Array;
  readonly #nowMs: () => number;
  readonly #rng: Rng;
  #epoch: number;
  #members = new Map<string, KeyCard>(); // hex(member_id) -> card
  #own: SenderChain | null = null;
  #ownKeyIds = new Set<number>();
  #shared = new Map<string, number>();
  #chains = new Map<string, Map<number, ReceiverChain>>();
  // hex(sender_id) -> key_ids of chains evicted or dropped in this epoch, oldest first: such a
  // chain is never installed again, so its old envelopes cannot be replayed.
  #tombstones = new Map<string, Set<number>>();
  #flagged = new Set<string>();

  constructor(
    identity: Identity,
    roomId: Uint8Array,
    opts: { epoch?: number; nowMs?: () => number; rng?: Rng } = {},
  ) {
    this.#identity = identity;
    this.#roomId = roomId.slice();
    this.#nowMs = opts.nowMs ?? (() => Date.now());
    this.#rng = opts.rng ?? defaultRng;
    const epoch = opts.epoch ?? 0;
    if (!(epoch >= 0 && epoch <= U32_MAX)) throw new E2EEError("malformed", "epoch is u32");
    this.#epoch = epoch;
    this.card = identity.card(this.#roomId, this.#nowMs());
  }

  get memberId(): Uint8Array {
    return this.#identity.memberId;
  }
  get roomId(): Uint8Array {
    return this.#roomId;
  }
  get epoch(): number {
    return this.#epoch;
  }
  /** Hex member ids caught equivocating (show in the UI). */
  get flagged(): ReadonlySet<string> {
    return new Set(this.#flagged);
  }

  /** What a reload needs to go on reading this room (kept by the page in the tab's sessionStorage,
   * docs/e2ee.md §19): the epoch, the members' cards, the peers' chains with their unread skipped
   * keys, tombstones and flags. Our own sending chain is left out on purpose: a snapshot may be
   * older than the last message sent, and a restored chain would then use a message key twice.
   * The restored state starts a fresh chain (a new key id, shared again) at its first send. */
  exportState(): CryptoState {
    const chains: ChainState[] = [];
    for (const byKey of this.#chains.values()) {
      for (const c of byKey.values()) {
        chains.push({
          sender: c.senderId.slice(),
          epoch: c.epoch,
          keyId: c.keyId,
          ck: c.ck.slice(),
          next: c.nextIndex,
          skipped: [...c.skipped].map(([i, [mk, t]]) => [i, mk.slice(), t]),
        });
      }
    }
    return {
      v: 1,
      epoch: this.#epoch,
      members: [...this.#members.values()].map((m) => m.raw.slice()),
      ownKeyIds: [...this.#ownKeyIds],
      chains,
      tombstones: [...this.#tombstones].map(([sender, ids]) => [sender, [...ids]]),
      flagged: [...this.#flagged],
    };
  }

  /** Take back an exportState() of this identity in this room. Throws E2EEError `malformed` on a
   * state that does not fit (it came from the tab's own storage, but storage is not trusted to be
   * well-formed); the caller then starts the seat over. */
  restoreState(state: CryptoState): void {
    if (!state || state.v !== 1 || !Number.isInteger(state.epoch) || state.epoch < 0 || state.epoch > U32_MAX) {
      throw new E2EEError("malformed", "crypto state");
    }
    this.#epoch = state.epoch;
    this.#own = null;
    this.#shared.clear();
    this.#members.clear();
    for (const card of state.members) this.addMember(card);
    this.#ownKeyIds = new Set(state.ownKeyIds.filter((k) => Number.isInteger(k)));
    this.#chains.clear();
    for (const c of state.chains) {
      if (!(c.ck instanceof Uint8Array) || c.ck.length !== KEY_LEN || !Number.isInteger(c.next) || c.epoch !== state.epoch) {
        throw new E2EEError("malformed", "chain state");
      }
      const sender = hex(c.sender);
      if (!this.#members.has(sender)) continue;
      const chain = new ReceiverChain(c.sender.slice(), c.epoch, c.keyId, c.ck.slice(), c.next);
      for (const [i, mk, t] of c.skipped.slice(-MAX_SKIPPED_KEYS)) chain.skipped.set(i, [mk.slice(), t]);
      let byKey = this.#chains.get(sender);
      if (!byKey) {
        byKey = new Map();
        this.#chains.set(sender, byKey);
      }
      byKey.set(c.keyId, chain);
    }
    this.#tombstones = new Map(state.tombstones.map(([sender, ids]) => [sender, new Set(ids.slice(-MAX_TOMBSTONES_PER_SENDER))]));
    this.#flagged = new Set(state.flagged);
  }

  setEpoch(epoch: number): void {
    if (epoch < this.#epoch) throw new E2EEError("old_epoch", "epochs only move forward");
    if (epoch > U32_MAX) throw new E2EEError("malformed", "epoch is u32");
    if (epoch === this.#epoch) return;
    this.#epoch = epoch;
    this.#own = null;
    this.#shared.clear();
    this.#tombstones.clear();
    for (const [sender, chains] of [...this.#chains]) {
      for (const [k, c] of [...chains]) if (c.epoch < epoch) chains.delete(k);
      if (chains.size === 0) this.#chains.delete(sender);
    }
  }

  addMember(card: Uint8Array): KeyCard {
    const kc = parseCard(card, this.#roomId);
    if (ctEq(kc.memberId, this.#identity.memberId)) return kc;
    const key = hex(kc.memberId);
    const known = this.#members.get(key);
    if (known) {
      if (!ctEq(known.raw, kc.raw)) throw new E2EEError("bad_card", "a different card for a known member");
      return known;
    }
    this.#members.set(key, kc);
    return kc;
  }

  /** Forget a member; its chains of this epoch stay tombstoned should it come back. */
  removeMember(memberId: Uint8Array): void {
    const key = hex(memberId);
    this.#members.delete(key);
    for (const keyId of this.#chains.get(key)?.keys() ?? []) this.#tombstone(key, keyId);
    this.#chains.delete(key);
    this.#shared.delete(key);
  }

  /** Remember a dropped chain for the rest of the epoch (bounded per sender, oldest out). */
  #tombstone(sender: string, keyId: number): void {
    let stones = this.#tombstones.get(sender);
    if (!stones) {
      stones = new Set();
      this.#tombstones.set(sender, stones);
    }
    stones.delete(keyId);
    stones.add(keyId);
    while (stones.size > MAX_TOMBSTONES_PER_SENDER) stones.delete(stones.values().next().value as number);
  }

  members(): KeyCard[] {
    return [...this.#members.values()];
  }

  safetyCode(): string {
    return safetyCode(this.#roomId, this.#epoch, [this.card, ...[...this.#members.values()].map((m) => m.raw)]);
  }

  #ensureChain(rotate: boolean): SenderChain {
    let own = this.#own;
    const now = this.#nowMs();
    if (own === null || own.epoch !== this.#epoch || (rotate && own.needsRotation(this.#epoch, now))) {
      let keyId: number;
      do {
        const b = randomBytes(this.#rng, 4);
        keyId = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      } while (this.#ownKeyIds.has(keyId));
      this.#ownKeyIds.add(keyId);
      own = new SenderChain(this.#epoch, keyId, randomBytes(this.#rng, KEY_LEN), 0, now);
      this.#own = own;
      this.#shared.clear();
    }
    return own;
  }

  /** SKDs [recipient_id, skd] for members lacking our current chain; marks them shared. */
  async pendingKeyShares(): Promise<Array<[Uint8Array, Uint8Array]>> {
    const own = this.#ensureChain(false);
    const startIndex = own.shareIndex;
    const chainKey = own.shareCk;
    const todo = [...this.#members.entries()].filter(([mid]) => this.#shared.get(mid) !== own.keyId);
    for (const [mid] of todo) this.#shared.set(mid, own.keyId);
    own.checkpoint();
    const out: Array<[Uint8Array, Uint8Array]> = [];
    for (const [, kc] of todo) {
      const skd = await sealSkd(this.#identity, kc, {
        roomId: this.#roomId,
        epoch: own.epoch,
        keyId: own.keyId,
        startIndex,
        chainKey,
      });
      out.push([kc.memberId, skd]);
    }
    return out;
  }

  encrypt(body: Uint8Array | string, msgType: number = MSG_TYPE_TEXT): Uint8Array {
    let data: Uint8Array;
    if (typeof body === "string") {
      if (msgType !== MSG_TYPE_TEXT) throw new E2EEError("malformed", "str bodies are type-1 text");
      data = encodeText(body);
    } else {
      data = body.slice();
    }
    if (msgType === MSG_TYPE_TEXT) decodeText(data); // never send what a receiver would refuse
    if (!(msgType >= 0 && msgType <= 0xff)) throw new E2EEError("malformed", "msg_type is u8");
    if (data.length > MAX_BODY_LEN) throw new E2EEError("bad_length", `body over ${MAX_BODY_LEN} bytes`);
    const own = this.#ensureChain(true);
    const salt = randomBytes(this.#rng, SALT_LEN);
    const frankingKey = randomBytes(this.#rng, KEY_LEN);
    const [index, mk] = own.nextKey();
    return sealEnvelope(this.#identity, {
      roomId: this.#roomId,
      epoch: own.epoch,
      keyId: own.keyId,
      index,
      mk,
      salt,
      payload: { frankingKey, msgType, clientTsMs: this.#nowMs(), body: data },
    });
  }

  #checkEpoch(epoch: number): void {
    if (epoch < this.#epoch) throw new E2EEError("old_epoch");
    if (epoch > this.#epoch) throw new E2EEError("future_epoch");
  }

  #senderCard(senderId: Uint8Array): KeyCard {
    if (ctEq(senderId, this.#identity.memberId)) throw new E2EEError("own_message");
    const card = this.#members.get(hex(senderId));
    if (!card) throw new E2EEError("wrong_sender", "sender is not an admitted member");
    return card;
  }

  async receiveKeyShare(skd: Uint8Array): Promise<void> {
    const h = parseSkd(skd);
    if (!ctEq(h.roomId, this.#roomId)) throw new E2EEError("wrong_room");
    if (!ctEq(h.recipientId, this.#identity.memberId)) throw new E2EEError("wrong_recipient");
    this.#checkEpoch(h.epoch);
    const card = this.#senderCard(h.senderId);
    const content = await openSkd(this.#identity, skd, card);
    // State may have moved while HPKE ran: check again before committing.
    this.#checkEpoch(h.epoch);
    const sender = hex(h.senderId);
    if (!this.#members.has(sender)) throw new E2EEError("wrong_sender", "sender left meanwhile");
    if (this.#tombstones.get(sender)?.has(h.keyId)) {
      throw new E2EEError("replay", "chain was evicted or dropped in this epoch");
    }
    let chains = this.#chains.get(sender);
    if (!chains) {
      chains = new Map();
      this.#chains.set(sender, chains);
    }
    const existing = chains.get(h.keyId);
    if (existing) {
      if (existing.consistentWith(content.startIndex, content.chainKey)) return;
      this.#flagged.add(sender);
      throw new E2EEError("equivocation", "second chain key for the same key_id");
    }
    chains.set(h.keyId, new ReceiverChain(h.senderId, h.epoch, h.keyId, content.chainKey, content.startIndex));
    while (chains.size > MAX_CHAINS_PER_SENDER) {
      const evicted = chains.keys().next().value as number;
      chains.delete(evicted);
      this.#tombstone(sender, evicted);
    }
  }

  /** Receiver order of the spec; no state changes unless every check passes. Throws only
   * E2EEError, whatever `envelope` holds: anything unexpected becomes `malformed`. */
  decrypt(envelope: Uint8Array): Opened {
    try {
      return this.#decrypt(envelope);
    } catch (err) {
      if (err instanceof E2EEError) throw err;
      throw new E2EEError("malformed", "unparsable envelope");
    }
  }

  #decrypt(envelope: Uint8Array): Opened {
    const h = parseEnvelope(envelope);
    if (!ctEq(h.roomId, this.#roomId)) throw new E2EEError("wrong_room");
    this.#checkEpoch(h.epoch);
    const card = this.#senderCard(h.senderId);
    verifyEnvelope(envelope, card);
    const chain = this.#chains.get(hex(h.senderId))?.get(h.keyId);
    if (!chain || chain.epoch !== h.epoch) throw new E2EEError("unknown_chain");
    const now = this.#nowMs();
    const plan = chain.plan(h.index, now);
    const payload = openWithKey(envelope, h, plan.mk);
    let text: string | null = null;
    let extra: Record<string, unknown> = {};
    if (payload.msgType === MSG_TYPE_TEXT) {
      const d = decodeText(payload.body);
      text = d.text;
      extra = d.obj;
    }
    chain.commit(plan, now);
    chain.expire(now);
    return {
      header: h,
      senderId: h.senderId,
      msgType: payload.msgType,
      clientTsMs: payload.clientTsMs,
      body: payload.body,
      text,
      extra,
      frankingKey: payload.frankingKey,
      reportBody: frankedBody(payload.msgType, payload.clientTsMs, payload.body),
    };
  }
}
