// Binary formats of e2ee v1 (docs/e2ee.md): identity and key card, SKD, envelope, padding,
// payload, franking and stamp, link secret, meta blob, safety code.
// Mirrors chatserver/e2ee/{identity,skd,envelope,padding,payload,franking,room_secret,safety}.py.
import {
  BUCKETS,
  CARD_BODY_LEN,
  CARD_LEN,
  HEADER_LEN,
  ID_LEN,
  JOIN_NONCE_MAX,
  JOIN_NONCE_MIN,
  KEY_LEN,
  MAX_ENVELOPE_LEN,
  MAX_JSON_DEPTH,
  MAX_NUMBER_LEN,
  MAX_SAFE_INTEGER,
  META_BLOCK,
  META_MAX_TEXT,
  NONCE_LEN,
  PAYLOAD_PREFIX_LEN,
  SAFETY_DIGITS,
  SAFETY_GROUP,
  SAFETY_ITERATIONS,
  SALT_LEN,
  SIG_LEN,
  SKD_BLOB_LEN,
  SKD_HEADER_LEN,
  SKD_LEN,
  SKD_PLAIN_LEN,
  SKD_TYPE,
  SUITE,
  TAG_LEN,
  U32_MAX,
  VERSION,
  ds,
} from "./constants.js";
import { E2EEError } from "./errors.js";
import {
  type Rng,
  aeadOpen,
  aeadSeal,
  concat,
  ctEq,
  defaultRng,
  ed25519PublicIsAcceptable,
  ed25519Public,
  ed25519Sign,
  ed25519Verify,
  hkdfSha256,
  hmacSha256,
  hpkeOpen,
  hpkeSeal,
  randomBytes,
  readU16,
  readU32,
  readU64,
  sha256,
  sha512,
  u32,
  u64,
  utf8,
  x25519Public,
  x25519PublicIsAcceptable,
} from "./primitives.js";

// --- identities and key cards (§4) --------------------------------------------------

export function deriveMemberId(edPublic: Uint8Array, xPublic: Uint8Array): Uint8Array {
  return sha256(concat(ds("member"), edPublic, xPublic)).slice(0, ID_LEN);
}

/** A member's private keys for one room; held in memory only. */
export class Identity {
  readonly edPublic: Uint8Array;
  readonly xPublic: Uint8Array;
  readonly memberId: Uint8Array;
  readonly #edSeed: Uint8Array;
  readonly #xSeed: Uint8Array;

  private constructor(edSeed: Uint8Array, xSeed: Uint8Array) {
    this.#edSeed = edSeed;
    this.#xSeed = xSeed;
    this.edPublic = ed25519Public(edSeed);
    this.xPublic = x25519Public(xSeed);
    this.memberId = deriveMemberId(this.edPublic, this.xPublic);
  }

  static generate(rng: Rng = defaultRng): Identity {
    return Identity.fromSeeds(randomBytes(rng, KEY_LEN), randomBytes(rng, KEY_LEN));
  }

  static fromSeeds(edSeed: Uint8Array, xSeed: Uint8Array): Identity {
    if (edSeed.length !== KEY_LEN || xSeed.length !== KEY_LEN) {
      throw new E2EEError("bad_length", "seeds must be 32 bytes");
    }
    return new Identity(edSeed.slice(), xSeed.slice());
  }

  /** The HPKE recipient key seed (used only to open SKDs addressed to us). */
  get xSeed(): Uint8Array {
    return this.#xSeed;
  }

  sign(data: Uint8Array): Uint8Array {
    return ed25519Sign(this.#edSeed, data);
  }

  card(roomId: Uint8Array, createdMs: number): Uint8Array {
    if (roomId.length !== ID_LEN) throw new E2EEError("bad_length", "room id 16 bytes");
    const body = concat(
      new Uint8Array([VERSION]),
      roomId,
      this.memberId,
      this.edPublic,
      this.xPublic,
      u64(createdMs),
    );
    return concat(body, this.sign(concat(ds("card"), body)));
  }
}

export interface KeyCard {
  raw: Uint8Array;
  roomId: Uint8Array;
  memberId: Uint8Array;
  edPublic: Uint8Array;
  xPublic: Uint8Array;
  createdMs: number;
}

export function parseCard(raw: Uint8Array, roomId?: Uint8Array): KeyCard {
  if (raw.length < 1) throw new E2EEError("malformed", "empty card");
  if (raw[0] !== VERSION) throw new E2EEError("unknown_version", "card version");
  if (raw.length !== CARD_LEN) throw new E2EEError("bad_length", `card must be ${CARD_LEN} bytes`);
  const cardRoom = raw.slice(1, 17);
  const memberId = raw.slice(17, 33);
  const edPublic = raw.slice(33, 65);
  const xPublic = raw.slice(65, 97);
  const createdMs = readU64(raw, 97);
  const body = raw.slice(0, CARD_BODY_LEN);
  const sig = raw.slice(CARD_BODY_LEN);
  if (!ed25519PublicIsAcceptable(edPublic) || !x25519PublicIsAcceptable(xPublic)) {
    throw new E2EEError("bad_card", "weak public key");
  }
  if (!ctEq(memberId, deriveMemberId(edPublic, xPublic))) {
    throw new E2EEError("bad_card", "member_id is not derived from the keys");
  }
  if (!ed25519Verify(edPublic, sig, concat(ds("card"), body))) {
    throw new E2EEError("bad_card", "self-signature does not verify");
  }
  if (roomId !== undefined && !ctEq(cardRoom, roomId)) {
    throw new E2EEError("wrong_room", "card is for another room");
  }
  return { raw: raw.slice(), roomId: cardRoom, memberId, edPublic, xPublic, createdMs };
}

// --- padding and payload (§6) ---------------------------------------------------

export function bucketFor(length: number): number {
  for (const size of BUCKETS) if (length + 1 <= size) return size;
  throw new E2EEError("bad_length", "payload exceeds the largest bucket");
}

export function padTo(data: Uint8Array, size: number): Uint8Array {
  if (data.length + 1 > size) throw new E2EEError("bad_length", "payload larger than its pad target");
  const out = new Uint8Array(size);
  out.set(data);
  out[data.length] = 0x80;
  return out;
}

export const pad = (data: Uint8Array): Uint8Array => padTo(data, bucketFor(data.length));

export function unpad(padded: Uint8Array): Uint8Array {
  let end = padded.length;
  while (end > 0 && padded[end - 1] === 0) end--;
  if (end === 0 || padded[end - 1] !== 0x80) throw new E2EEError("padding", "no 0x80 marker");
  return padded.slice(0, end - 1);
}

export function frankedBody(msgType: number, clientTsMs: number, body: Uint8Array): Uint8Array {
  if (!(msgType >= 0 && msgType <= 0xff) || !Number.isInteger(msgType)) {
    throw new E2EEError("malformed", "type is u8");
  }
  return concat(new Uint8Array([msgType]), u64(clientTsMs), body);
}

export function frankingCommitment(
  frankingKey: Uint8Array,
  ctx: Uint8Array,
  fbody: Uint8Array,
): Uint8Array {
  if (frankingKey.length !== KEY_LEN) throw new E2EEError("bad_length", "franking key must be 32 bytes");
  return hmacSha256(frankingKey, concat(ds("frank"), ctx, fbody));
}

export interface Payload {
  frankingKey: Uint8Array;
  msgType: number;
  clientTsMs: number;
  body: Uint8Array;
}

export function encodePayload(p: Payload): Uint8Array {
  if (p.frankingKey.length !== KEY_LEN) throw new E2EEError("bad_length", "franking key must be 32 bytes");
  return concat(p.frankingKey, frankedBody(p.msgType, p.clientTsMs, p.body));
}

export function decodePayload(data: Uint8Array): Payload {
  if (data.length < PAYLOAD_PREFIX_LEN) throw new E2EEError("malformed", "payload too short");
  // client_ts_ms is a u64 on the wire but must stay below 2^53 (a double holds it exactly).
  const ts = new DataView(data.buffer, data.byteOffset, data.byteLength).getBigUint64(KEY_LEN + 1, false);
  if (ts > BigInt(MAX_SAFE_INTEGER)) throw new E2EEError("malformed", "client_ts_ms must be below 2^53");
  return {
    frankingKey: data.slice(0, KEY_LEN),
    msgType: data[KEY_LEN]!,
    clientTsMs: Number(ts),
    body: data.slice(KEY_LEN + 9),
  };
}

// --- type-1 body profile (§6 "Body profile"; I-JSON, RFC 7493) -------------------------
// A strict parser mirrored line for line by parse_text_body in chatserver/e2ee/payload.py, so
// both clients give one verdict. Native JSON.parse is not used: it accepts duplicate names,
// lone surrogate escapes, integers beyond 2^53 and any depth.

export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

const bad = (detail: string): E2EEError => new E2EEError("malformed", `type-1 body: ${detail}`);
const WS = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const STR_CHUNK = /[^"\\\u0000-\u001f]*/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
const LITERALS: Array<[string, JSONValue]> = [["true", true], ["false", false], ["null", null]];

class BodyParser {
  i = 0;
  constructor(readonly s: string) {}

  ws(): void {
    WS.lastIndex = this.i;
    WS.exec(this.s);
    this.i = WS.lastIndex;
  }

  value(depth: number): JSONValue {
    const c = this.s.charAt(this.i);
    if (c === "{") return this.obj(depth + 1);
    if (c === "[") return this.array(depth + 1);
    if (c === '"') return this.string();
    for (const [word, val] of LITERALS) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return val;
      }
    }
    return this.number();
  }

  obj(depth: number): { [key: string]: JSONValue } {
    if (depth > MAX_JSON_DEPTH) throw bad(`nested deeper than ${MAX_JSON_DEPTH}`);
    this.i += 1;
    const out: { [key: string]: JSONValue } = {};
    const seen = new Set<string>();
    this.ws();
    if (this.s.charAt(this.i) === "}") {
      this.i += 1;
      return out;
    }
    for (;;) {
      if (this.s.charAt(this.i) !== '"') throw bad("member name expected");
      const key = this.string();
      if (seen.has(key)) throw bad("duplicate member name");
      seen.add(key);
      this.ws();
      if (this.s.charAt(this.i) !== ":") throw bad("':' expected");
      this.i += 1;
      this.ws();
      // defineProperty, not assignment: a "__proto__" name must stay an own data property.
      Object.defineProperty(out, key, { value: this.value(depth), writable: true, enumerable: true, configurable: true });
      this.ws();
      const c = this.s.charAt(this.i);
      this.i += 1;
      if (c === "}") return out;
      if (c !== ",") throw bad("',' or '}' expected");
      this.ws();
    }
  }

  array(depth: number): JSONValue[] {
    if (depth > MAX_JSON_DEPTH) throw bad(`nested deeper than ${MAX_JSON_DEPTH}`);
    this.i += 1;
    const out: JSONValue[] = [];
    this.ws();
    if (this.s.charAt(this.i) === "]") {
      this.i += 1;
      return out;
    }
    for (;;) {
      out.push(this.value(depth));
      this.ws();
      const c = this.s.charAt(this.i);
      this.i += 1;
      if (c === "]") return out;
      if (c !== ",") throw bad("',' or ']' expected");
      this.ws();
    }
  }

  hex4(at: number): number {
    const h = this.s.slice(at, at + 4);
    if (!HEX4.test(h)) throw bad("bad \\u escape");
    return parseInt(h, 16);
  }

  string(): string {
    const s = this.s;
    let i = this.i + 1;
    const parts: string[] = [];
    for (;;) {
      STR_CHUNK.lastIndex = i;
      parts.push(STR_CHUNK.exec(s)![0]);
      i = STR_CHUNK.lastIndex;
      const c = s.charAt(i);
      if (c === '"') {
        this.i = i + 1;
        return parts.join("");
      }
      if (c !== "\\") throw bad("unterminated string or raw control character");
      const e = s.charAt(i + 1);
      const simple = Object.hasOwn(ESCAPES, e) ? ESCAPES[e] : undefined;
      if (simple !== undefined) {
        parts.push(simple);
        i += 2;
        continue;
      }
      if (e !== "u") throw bad("unknown escape");
      const cp = this.hex4(i + 2);
      i += 6;
      if (cp >= 0xd800 && cp <= 0xdbff) {
        const lo = s.startsWith("\\u", i) ? this.hex4(i + 2) : -1;
        if (!(lo >= 0xdc00 && lo <= 0xdfff)) throw bad("lone surrogate escape");
        parts.push(String.fromCharCode(cp, lo));
        i += 6;
      } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        throw bad("lone surrogate escape");
      } else {
        parts.push(String.fromCharCode(cp));
      }
    }
  }

  number(): number {
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (m === null) throw bad("value expected");
    const tok = m[0];
    this.i = NUMBER.lastIndex;
    if (tok.length > MAX_NUMBER_LEN) throw bad(`number literal over ${MAX_NUMBER_LEN} characters`);
    if (!/[.eE]/.test(tok)) {
      // At least 10^16 > 2^53 - 1: refuse before converting.
      if (tok.replace(/^-/, "").length > 16) throw bad("integer beyond 2^53 - 1");
      const n = Number(tok);
      if (Math.abs(n) > MAX_SAFE_INTEGER) throw bad("integer beyond 2^53 - 1");
      return n;
    }
    const f = Number(tok);
    if (!Number.isFinite(f)) throw bad("number beyond IEEE double range");
    if (f === 0 && /[1-9]/.test(tok.split(/[eE]/)[0]!)) throw bad("number underflows IEEE double");
    return f;
  }
}

function parseTextBodyStrict(body: Uint8Array): { [key: string]: JSONValue } {
  if (body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) throw bad("byte order mark");
  let s: string;
  try {
    // fatal: no overlongs, no encoded surrogates; ignoreBOM: never strip anything silently.
    s = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    throw bad("not UTF-8");
  }
  const p = new BodyParser(s);
  p.ws();
  if (s.charAt(p.i) !== "{") throw bad("top level is not an object");
  const obj = p.obj(1);
  p.ws();
  if (p.i !== s.length) throw bad("trailing data");
  if (!Object.hasOwn(obj, "text") || typeof obj["text"] !== "string") throw bad('needs a string "text"');
  return obj;
}

/** Parse a type-1 body under the body profile; any violation, whatever the input, is `malformed`. */
export function parseTextBody(body: Uint8Array): { [key: string]: JSONValue } {
  try {
    return parseTextBodyStrict(body);
  } catch (err) {
    if (err instanceof E2EEError) throw err;
    throw bad("unparsable");
  }
}

// --- envelope (§6) -----------------------------------------------------------------

export function makeCtx(
  roomId: Uint8Array,
  senderId: Uint8Array,
  epoch: number,
  keyId: number,
  index: number,
): Uint8Array {
  return concat(roomId, senderId, u32(epoch), u32(keyId), u32(index));
}

export interface EnvelopeHeader {
  version: number;
  suite: number;
  roomId: Uint8Array;
  senderId: Uint8Array;
  epoch: number;
  keyId: number;
  index: number;
  salt: Uint8Array;
  keyCommit: Uint8Array;
  frankingCommit: Uint8Array;
  ctLen: number;
}

export const headerCtx = (h: EnvelopeHeader): Uint8Array =>
  makeCtx(h.roomId, h.senderId, h.epoch, h.keyId, h.index);

export function packHeader(h: EnvelopeHeader): Uint8Array {
  return concat(
    new Uint8Array([h.version, h.suite]),
    h.roomId,
    h.senderId,
    u32(h.epoch),
    u32(h.keyId),
    u32(h.index),
    h.salt,
    h.keyCommit,
    h.frankingCommit,
    u32(h.ctLen),
  );
}

export interface MessageKeys {
  key: Uint8Array;
  nonce: Uint8Array;
  keyCommit: Uint8Array;
}

export function deriveMessageKeys(mk: Uint8Array, salt: Uint8Array, ctx: Uint8Array): MessageKeys {
  const okm = hkdfSha256(mk, salt, concat(ds("msg"), ctx), 76);
  return { key: okm.slice(0, 32), nonce: okm.slice(32, 44), keyCommit: okm.slice(44, 76) };
}

const VALID_CT_LENS = new Set(BUCKETS.map((b) => b + TAG_LEN));

export function parseEnvelope(raw: Uint8Array): EnvelopeHeader {
  if (raw.length > MAX_ENVELOPE_LEN) throw new E2EEError("bad_length", "envelope too large");
  if (raw.length < 2) throw new E2EEError("malformed", "envelope too short");
  if (raw[0] !== VERSION) throw new E2EEError("unknown_version");
  if (raw[1] !== SUITE) throw new E2EEError("unknown_suite");
  if (raw.length < HEADER_LEN) throw new E2EEError("bad_length", "shorter than the header");
  const h: EnvelopeHeader = {
    version: raw[0]!,
    suite: raw[1]!,
    roomId: raw.slice(2, 18),
    senderId: raw.slice(18, 34),
    epoch: readU32(raw, 34),
    keyId: readU32(raw, 38),
    index: readU32(raw, 42),
    salt: raw.slice(46, 62),
    keyCommit: raw.slice(62, 94),
    frankingCommit: raw.slice(94, 126),
    ctLen: readU32(raw, 126),
  };
  if (!VALID_CT_LENS.has(h.ctLen)) throw new E2EEError("bad_length", "ct_len is not a bucket size + 16");
  if (raw.length !== HEADER_LEN + h.ctLen + SIG_LEN) {
    throw new E2EEError("bad_length", "length does not match ct_len");
  }
  return h;
}

export function verifyEnvelope(raw: Uint8Array, card: KeyCard): EnvelopeHeader {
  const h = parseEnvelope(raw);
  if (!ctEq(h.senderId, card.memberId)) throw new E2EEError("wrong_sender", "sender_id is not the card's member");
  if (!ctEq(h.roomId, card.roomId)) throw new E2EEError("wrong_room", "card and envelope rooms differ");
  const signed = raw.subarray(0, raw.length - SIG_LEN);
  const sig = raw.subarray(raw.length - SIG_LEN);
  if (!ed25519Verify(card.edPublic, sig, concat(ds("sig"), signed))) {
    throw new E2EEError("bad_signature", "envelope signature");
  }
  return h;
}

export interface SealParams {
  roomId: Uint8Array;
  epoch: number;
  keyId: number;
  index: number;
  mk: Uint8Array;
  salt: Uint8Array;
}

function checkU32(...vals: number[]): void {
  for (const v of vals) {
    if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw new E2EEError("malformed", "u32 out of range");
  }
}

export function sealPadded(
  identity: Identity,
  p: SealParams & { frankingCommit: Uint8Array; padded: Uint8Array },
): Uint8Array {
  if (p.roomId.length !== ID_LEN || p.salt.length !== SALT_LEN || p.mk.length !== KEY_LEN) {
    throw new E2EEError("bad_length", "room id 16, salt 16, mk 32");
  }
  checkU32(p.epoch, p.keyId, p.index);
  const ctx = makeCtx(p.roomId, identity.memberId, p.epoch, p.keyId, p.index);
  const keys = deriveMessageKeys(p.mk, p.salt, ctx);
  const header = packHeader({
    version: VERSION,
    suite: SUITE,
    roomId: p.roomId,
    senderId: identity.memberId,
    epoch: p.epoch,
    keyId: p.keyId,
    index: p.index,
    salt: p.salt,
    keyCommit: keys.keyCommit,
    frankingCommit: p.frankingCommit,
    ctLen: p.padded.length + TAG_LEN,
  });
  const ct = aeadSeal(keys.key, keys.nonce, p.padded, header);
  const signed = concat(header, ct);
  return concat(signed, identity.sign(concat(ds("sig"), signed)));
}

/** Build one envelope; deterministic given mk, salt and the franking key. */
export function sealEnvelope(identity: Identity, p: SealParams & { payload: Payload }): Uint8Array {
  checkU32(p.epoch, p.keyId, p.index);
  const ctx = makeCtx(p.roomId, identity.memberId, p.epoch, p.keyId, p.index);
  const fbody = frankedBody(p.payload.msgType, p.payload.clientTsMs, p.payload.body);
  const fc = frankingCommitment(p.payload.frankingKey, ctx, fbody);
  return sealPadded(identity, { ...p, frankingCommit: fc, padded: pad(encodePayload(p.payload)) });
}

/** Receiver steps 4-6: key commitment, AEAD, padding, franking commitment. */
export function openWithKey(raw: Uint8Array, h: EnvelopeHeader, mk: Uint8Array): Payload {
  const ctx = headerCtx(h);
  const keys = deriveMessageKeys(mk, h.salt, ctx);
  if (!ctEq(keys.keyCommit, h.keyCommit)) throw new E2EEError("key_commitment", "key_commit mismatch");
  const ct = raw.subarray(HEADER_LEN, HEADER_LEN + h.ctLen);
  const padded = aeadOpen(keys.key, keys.nonce, ct, raw.subarray(0, HEADER_LEN));
  if (!BUCKETS.includes(padded.length)) throw new E2EEError("padding", "plaintext is not a bucket size");
  const payload = decodePayload(unpad(padded));
  const fc = frankingCommitment(
    payload.frankingKey,
    ctx,
    frankedBody(payload.msgType, payload.clientTsMs, payload.body),
  );
  if (!ctEq(fc, h.frankingCommit)) throw new E2EEError("franking", "franking commitment mismatch");
  return payload;
}

// --- franking stamp (§10) ---------------------------------------------------------

export function serverStamp(serverKey: Uint8Array, envelope: Uint8Array, serverTsMs: number): Uint8Array {
  if (serverKey.length < 32) throw new E2EEError("bad_length", "server key must be at least 32 bytes");
  const h = parseEnvelope(envelope);
  return hmacSha256(
    serverKey,
    concat(ds("stamp"), h.roomId, h.senderId, u64(serverTsMs), h.frankingCommit, sha256(envelope)),
  );
}

export function verifyReport(
  serverKey: Uint8Array,
  envelope: Uint8Array,
  serverTsMs: number,
  stamp: Uint8Array,
  frankingKey: Uint8Array,
  fbody: Uint8Array,
  senderCard: KeyCard,
): EnvelopeHeader {
  // The accused's signature, not only the stamp: a stamp is the server's word, and whoever holds
  // the server key could stamp an envelope nobody signed.
  const h = verifyEnvelope(envelope, senderCard);
  if (!ctEq(serverStamp(serverKey, envelope, serverTsMs), stamp)) {
    throw new E2EEError("bad_stamp", "stamp does not verify");
  }
  if (frankingKey.length !== KEY_LEN) throw new E2EEError("franking", "franking key must be 32 bytes");
  if (!ctEq(frankingCommitment(frankingKey, headerCtx(h), fbody), h.frankingCommit)) {
    throw new E2EEError("franking", "body or key does not match the commitment");
  }
  return h;
}

// --- sender-key distribution (§5) -----------------------------------------------

export interface SkdHeader {
  roomId: Uint8Array;
  senderId: Uint8Array;
  recipientId: Uint8Array;
  epoch: number;
  keyId: number;
}

export interface SkdContent {
  header: SkdHeader;
  startIndex: number;
  chainKey: Uint8Array;
}

export const skdInfo = (
  roomId: Uint8Array,
  senderId: Uint8Array,
  recipientId: Uint8Array,
  epoch: number,
): Uint8Array => concat(ds("skd"), roomId, senderId, recipientId, u32(epoch));

export function skdPlaintext(
  roomId: Uint8Array,
  senderId: Uint8Array,
  epoch: number,
  keyId: number,
  startIndex: number,
  chainKey: Uint8Array,
): Uint8Array {
  return concat(new Uint8Array([VERSION]), roomId, senderId, u32(epoch), u32(keyId), u32(startIndex), chainKey);
}

/** Sign and frame an already sealed blob (deterministic: the vectors record the blob). */
export function assembleSkd(identity: Identity, h: SkdHeader, blob: Uint8Array): Uint8Array {
  if (blob.length !== SKD_BLOB_LEN) throw new E2EEError("bad_length", "HPKE blob must be 125 bytes");
  const outer = concat(
    new Uint8Array([VERSION, SKD_TYPE]),
    h.roomId,
    h.senderId,
    h.recipientId,
    u32(h.epoch),
    u32(h.keyId),
    new Uint8Array([blob.length >> 8, blob.length & 0xff]),
  );
  const signed = concat(outer, blob);
  return concat(signed, identity.sign(concat(ds("skd-sig"), signed)));
}

export async function sealSkd(
  identity: Identity,
  recipient: KeyCard,
  p: { roomId: Uint8Array; epoch: number; keyId: number; startIndex: number; chainKey: Uint8Array },
): Promise<Uint8Array> {
  if (p.roomId.length !== ID_LEN || p.chainKey.length !== KEY_LEN) {
    throw new E2EEError("bad_length", "room id 16, chain key 32");
  }
  checkU32(p.epoch, p.keyId, p.startIndex);
  const plain = skdPlaintext(p.roomId, identity.memberId, p.epoch, p.keyId, p.startIndex, p.chainKey);
  const info = skdInfo(p.roomId, identity.memberId, recipient.memberId, p.epoch);
  const blob = await hpkeSeal(recipient.xPublic, info, plain);
  return assembleSkd(
    identity,
    { roomId: p.roomId, senderId: identity.memberId, recipientId: recipient.memberId, epoch: p.epoch, keyId: p.keyId },
    blob,
  );
}

export function parseSkd(raw: Uint8Array): SkdHeader {
  if (raw.length < 2) throw new E2EEError("malformed", "SKD too short");
  if (raw[0] !== VERSION) throw new E2EEError("unknown_version");
  if (raw[1] !== SKD_TYPE) throw new E2EEError("malformed", "not an SKD (type byte)");
  if (raw.length !== SKD_LEN) throw new E2EEError("bad_length", `SKD must be ${SKD_LEN} bytes`);
  if (readU16(raw, 58) !== SKD_BLOB_LEN) throw new E2EEError("bad_length", "declared blob length");
  return {
    roomId: raw.slice(2, 18),
    senderId: raw.slice(18, 34),
    recipientId: raw.slice(34, 50),
    epoch: readU32(raw, 50),
    keyId: readU32(raw, 54),
  };
}

export function verifySkd(raw: Uint8Array, senderCard: KeyCard): SkdHeader {
  const h = parseSkd(raw);
  if (!ctEq(h.senderId, senderCard.memberId)) throw new E2EEError("wrong_sender", "SKD sender is not the card's member");
  if (!ctEq(h.roomId, senderCard.roomId)) throw new E2EEError("wrong_room", "SKD and card rooms differ");
  const signed = raw.subarray(0, raw.length - SIG_LEN);
  const sig = raw.subarray(raw.length - SIG_LEN);
  if (!ed25519Verify(senderCard.edPublic, sig, concat(ds("skd-sig"), signed))) {
    throw new E2EEError("bad_signature", "SKD signature");
  }
  return h;
}

export async function openSkd(identity: Identity, raw: Uint8Array, senderCard: KeyCard): Promise<SkdContent> {
  const h = verifySkd(raw, senderCard);
  if (!ctEq(h.recipientId, identity.memberId)) throw new E2EEError("wrong_recipient", "SKD is for another member");
  const blob = raw.slice(SKD_HEADER_LEN, SKD_HEADER_LEN + SKD_BLOB_LEN);
  const plain = await hpkeOpen(identity.xSeed, skdInfo(h.roomId, h.senderId, h.recipientId, h.epoch), blob);
  if (plain.length !== SKD_PLAIN_LEN) throw new E2EEError("skd_mismatch", "inner plaintext length");
  if (plain[0] !== VERSION) throw new E2EEError("unknown_version", "inner SKD version");
  const roomId = plain.slice(1, 17);
  const senderId = plain.slice(17, 33);
  const epoch = readU32(plain, 33);
  const keyId = readU32(plain, 37);
  const startIndex = readU32(plain, 41);
  const chainKey = plain.slice(45, 77);
  if (!(ctEq(roomId, h.roomId) && ctEq(senderId, h.senderId) && epoch === h.epoch && keyId === h.keyId)) {
    throw new E2EEError("skd_mismatch", "inner fields differ from the signed header");
  }
  return { header: h, startIndex, chainKey };
}

// --- room link secret and meta blobs (§3) --------------------------------------------

export const SECRET_LEN = 32;

export const joinMessage = (roomId: Uint8Array, nonce: Uint8Array, memberId: Uint8Array): Uint8Array =>
  concat(ds("join"), roomId, nonce, memberId);

export interface RoomSecret {
  secret: Uint8Array;
  roomId: Uint8Array;
  joinPublic: Uint8Array;
  metaKey: Uint8Array;
  joinSeed: Uint8Array;
}

export function deriveRoomSecret(secret: Uint8Array): RoomSecret {
  if (secret.length !== SECRET_LEN) throw new E2EEError("bad_length", "room secret must be 32 bytes");
  const roomId = hkdfSha256(secret, null, ds("room-id"), ID_LEN);
  const joinSeed = hkdfSha256(secret, null, ds("room-join"), 32);
  const metaKey = hkdfSha256(secret, null, ds("room-meta"), KEY_LEN);
  return { secret: secret.slice(), roomId, joinPublic: ed25519Public(joinSeed), metaKey, joinSeed };
}

export const newRoomSecret = (rng: Rng = defaultRng): RoomSecret =>
  deriveRoomSecret(randomBytes(rng, SECRET_LEN));

export function signJoin(rs: RoomSecret, nonce: Uint8Array, memberId: Uint8Array): Uint8Array {
  if (memberId.length !== ID_LEN || nonce.length < JOIN_NONCE_MIN || nonce.length > JOIN_NONCE_MAX) {
    throw new E2EEError("bad_length", "join nonce must be 16..64 bytes, ids 16");
  }
  return ed25519Sign(rs.joinSeed, joinMessage(rs.roomId, nonce, memberId));
}

export function verifyJoinProof(
  joinPublic: Uint8Array,
  roomId: Uint8Array,
  nonce: Uint8Array,
  memberId: Uint8Array,
  proof: Uint8Array,
): boolean {
  if (
    roomId.length !== ID_LEN ||
    memberId.length !== ID_LEN ||
    nonce.length < JOIN_NONCE_MIN ||
    nonce.length > JOIN_NONCE_MAX ||
    proof.length !== SIG_LEN
  ) {
    return false;
  }
  return ed25519Verify(joinPublic, proof, joinMessage(roomId, nonce, memberId));
}

const metaAad = (roomId: Uint8Array): Uint8Array => concat(ds("meta"), new Uint8Array([VERSION]), roomId);

export function sealMeta(
  metaKey: Uint8Array,
  roomId: Uint8Array,
  text: string,
  rng: Rng = defaultRng,
): Uint8Array {
  if (metaKey.length !== KEY_LEN || roomId.length !== ID_LEN) {
    throw new E2EEError("bad_length", "meta key 32 bytes, room id 16");
  }
  const data = utf8(text);
  if (data.length > META_MAX_TEXT) throw new E2EEError("bad_length", "meta text too long");
  const size = (Math.floor(data.length / META_BLOCK) + 1) * META_BLOCK;
  const nonce = randomBytes(rng, NONCE_LEN);
  return concat(new Uint8Array([VERSION]), nonce, aeadSeal(metaKey, nonce, padTo(data, size), metaAad(roomId)));
}

export function openMeta(metaKey: Uint8Array, roomId: Uint8Array, blob: Uint8Array): string {
  if (blob.length < 1 + NONCE_LEN + META_BLOCK + TAG_LEN) throw new E2EEError("bad_length", "meta blob too short");
  if (blob[0] !== VERSION) throw new E2EEError("unknown_version");
  if ((blob.length - 1 - NONCE_LEN - TAG_LEN) % META_BLOCK) {
    throw new E2EEError("bad_length", "meta blob not block aligned");
  }
  const nonce = blob.slice(1, 1 + NONCE_LEN);
  const padded = aeadOpen(metaKey, nonce, blob.slice(1 + NONCE_LEN), metaAad(roomId));
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(unpad(padded));
  } catch (e) {
    if (e instanceof E2EEError) throw e;
    throw new E2EEError("malformed", "meta text is not UTF-8");
  }
}

// --- safety code (§11) -------------------------------------------------------------

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export function safetyTranscript(roomId: Uint8Array, epoch: number, cards: Iterable<Uint8Array>): Uint8Array {
  checkU32(epoch);
  const byHex = new Map<string, Uint8Array>();
  for (const c of cards) {
    const kc = parseCard(c, roomId);
    byHex.set(Array.from(kc.raw).join(","), kc.raw);
  }
  const unique = [...byHex.values()].sort(compareBytes);
  return concat(ds("safety"), roomId, u32(epoch), u32(unique.length), ...unique);
}

/** 40 digits in groups of 5; the order of `cards` does not matter. */
export function safetyCode(roomId: Uint8Array, epoch: number, cards: Iterable<Uint8Array>): string {
  const d = sha512(safetyTranscript(roomId, epoch, cards));
  let h = d;
  const buf = new Uint8Array(128);
  buf.set(d, 64);
  for (let i = 0; i < SAFETY_ITERATIONS; i++) {
    buf.set(h, 0);
    h = sha512(buf);
  }
  const groups: string[] = [];
  for (let k = 0; k < SAFETY_DIGITS / SAFETY_GROUP; k++) {
    let v = 0n;
    for (let j = 0; j < 5; j++) v = (v << 8n) | BigInt(h[5 * k + j]!);
    groups.push((v % 10n ** BigInt(SAFETY_GROUP)).toString().padStart(SAFETY_GROUP, "0"));
  }
  return groups.join(" ");
}
