// Thin wrappers around audited libraries: the only place primitives are called
// (mirrors chatserver/e2ee/primitives.py). Nothing here is hand-written cryptography.
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 as nobleSha256, sha512 as nobleSha512 } from "@noble/hashes/sha2.js";
import { randomBytes as nobleRandom } from "@noble/hashes/utils.js";
import { CipherSuite } from "@hpke/core";
import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import { DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/dhkem-x25519";
import { E2EEError } from "./errors.js";

export type Rng = (n: number) => Uint8Array;
export const defaultRng: Rng = (n) => nobleRandom(n);

export function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = rng(n);
  if (out.length !== n) throw new Error("rng returned the wrong number of bytes");
  return out;
}

export const sha256 = (data: Uint8Array): Uint8Array => nobleSha256(data);
export const sha512 = (data: Uint8Array): Uint8Array => nobleSha512(data);
export const hmacSha256 = (key: Uint8Array, data: Uint8Array): Uint8Array =>
  hmac(nobleSha256, key, data);

/** RFC 5869 HKDF-SHA256; an empty salt means HashLen zero bytes. */
export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array | null,
  info: Uint8Array,
  length: number,
): Uint8Array {
  return hkdf(nobleSha256, ikm, salt && salt.length ? salt : new Uint8Array(32), info, length);
}

/** Constant-time equality for MACs, commitments and ids (length is public). */
export function ctEq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function u16(n: number): Uint8Array {
  return new Uint8Array([(n >>> 8) & 0xff, n & 0xff]);
}
export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, false);
  return b;
}
export function u64(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new E2EEError("malformed", "u64 out of range");
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), false);
  return b;
}
export function readU32(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, false);
}
export function readU16(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(off, false);
}
export function readU64(b: Uint8Array, off: number): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(off, false);
  return Number(v); // ms timestamps: far below 2^53
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

export function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}
export function unhex(s: string): Uint8Array {
  if (s.length % 2) throw new Error("odd hex");
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// --- Ed25519 -----------------------------------------------------------------

const P = (1n << 255n) - 19n;
// The 8 small-order encodings plus the 2 "negative zero" encodings (see primitives.py).
const WEAK_ED25519 = new Set(
  [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
  ],
);

export function ed25519PublicIsAcceptable(pub: Uint8Array): boolean {
  if (pub.length !== 32 || WEAK_ED25519.has(hex(pub))) return false;
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(pub[i]!);
  y &= (1n << 255n) - 1n;
  return y < P;
}

export const ed25519Public = (seed: Uint8Array): Uint8Array => ed25519.getPublicKey(seed);
export const ed25519Sign = (seed: Uint8Array, msg: Uint8Array): Uint8Array =>
  ed25519.sign(msg, seed);

/** RFC 8032 strict verification (S < L, cofactorless), as OpenSSL does: zip215 false. */
export function ed25519Verify(pub: Uint8Array, sig: Uint8Array, msg: Uint8Array): boolean {
  if (pub.length !== 32 || sig.length !== 64) return false;
  try {
    return ed25519.verify(sig, msg, pub, { zip215: false }) && cofactorless(pub, sig, msg);
  } catch {
    return false;
  }
}

const leNumber = (b: Uint8Array): bigint => {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
};

/**
 * noble verifies with the cofactored equation ([8][S]B = [8]R + [8][k]A); OpenSSL (the server and
 * the Python client) with the cofactorless one ([S]B = R + [k]A). Both must agree on every
 * signature, so after noble's strict checks (canonical encodings, S < L) we also require the
 * cofactorless equation, using noble's own point arithmetic.
 */
function cofactorless(pub: Uint8Array, sig: Uint8Array, msg: Uint8Array): boolean {
  const Point = ed25519.Point;
  const L = Point.Fn.ORDER;
  const A = Point.fromBytes(pub, false);
  const R = Point.fromBytes(sig.subarray(0, 32), false);
  const s = leNumber(sig.subarray(32));
  const k = leNumber(nobleSha512(concat(sig.subarray(0, 32), pub, msg))) % L;
  return Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k)).equals(R);
}

// --- X25519 / HPKE -------------------------------------------------------------

export const x25519Public = (seed: Uint8Array): Uint8Array => x25519.getPublicKey(seed);
export function x25519Shared(priv: Uint8Array, pub: Uint8Array): Uint8Array {
  return x25519.getSharedSecret(priv, pub);
}

const PROBE = new Uint8Array(32).map((_, i) => i + 1);

/** Small-order X25519 points give an all-zero shared secret for any clamped scalar. */
export function x25519PublicIsAcceptable(pub: Uint8Array): boolean {
  if (pub.length !== 32) return false;
  try {
    const out = x25519.getSharedSecret(PROBE, pub);
    return out.some((b) => b !== 0);
  } catch {
    return false;
  }
}

let suite: CipherSuite | null = null;
function hpkeSuite(): CipherSuite {
  suite ??= new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Chacha20Poly1305(),
  });
  return suite;
}

/** RFC 9180 base mode, single shot, empty AAD: returns enc(32) ‖ ct. */
export async function hpkeSeal(
  recipientPub: Uint8Array,
  info: Uint8Array,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const s = hpkeSuite();
  const pk = await s.kem.deserializePublicKey(recipientPub);
  const { ct, enc } = await s.seal({ recipientPublicKey: pk, info }, plaintext);
  return concat(new Uint8Array(enc), new Uint8Array(ct));
}

export async function hpkeOpen(
  recipientSeed: Uint8Array,
  info: Uint8Array,
  blob: Uint8Array,
): Promise<Uint8Array> {
  const s = hpkeSuite();
  try {
    const sk = await s.kem.deserializePrivateKey(recipientSeed);
    const pt = await s.open(
      { recipientKey: sk, enc: blob.slice(0, 32), info },
      blob.slice(32),
    );
    return new Uint8Array(pt);
  } catch {
    throw new E2EEError("aead", "HPKE open failed");
  }
}

// --- ChaCha20-Poly1305 ---------------------------------------------------------

export function aeadSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  return chacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

export function aeadOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  try {
    return chacha20poly1305(key, nonce, aad).decrypt(ciphertext);
  } catch {
    throw new E2EEError("aead", "ChaCha20-Poly1305 open failed");
  }
}
