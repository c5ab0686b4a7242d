// Therapist credentials in the browser (mirrors chatserver/credentials.py): the token
// `cst1.<certificate>.<therapist seed>`, the local check of the certificate against the server's
// published key, the proof of possession for sign-in, badges and lobby admissions.
import { ds } from "../e2ee/constants.js";
import { concat, ed25519Sign, ed25519Verify, u16, u32 } from "../e2ee/primitives.js";
import { unb64, unb64id } from "../wire.js";

export const WELL_KNOWN = "/.well-known/chatserver-therapists.json";
const SIG_LEN = 64;

export class CredentialError extends Error {
  constructor(
    readonly code: "malformed" | "tampered" | "expired",
    message: string,
  ) {
    super(message);
  }
}

export interface Credential {
  id: string;
  name: string;
  issuedAt: number;
  expiresAt: number;
  publicKey: Uint8Array;
}

function b64any(text: string): Uint8Array | null {
  for (let n = Math.floor((text.length * 3) / 4); n >= Math.floor((text.length * 3) / 4) - 2 && n >= 0; n--) {
    const raw = unb64(text, n);
    if (raw) return raw;
  }
  return null;
}

/** `cst1.<cert>.<seed>` -> certificate and seed; throws CredentialError("malformed"). */
export function splitToken(token: string): { cert: Uint8Array; seed: Uint8Array } {
  const parts = token.trim().split(".");
  if (parts.length !== 3 || parts[0] !== "cst1") throw new CredentialError("malformed", "A credential looks like cst1.<...>.<...>.");
  const cert = b64any(parts[1]!);
  const seed = unb64(parts[2]!, 32);
  if (!cert || !seed) throw new CredentialError("malformed", "This credential is damaged. Copy it again, in full.");
  return { cert, seed };
}

const readU64 = (b: Uint8Array, o: number): number => {
  let n = 0;
  for (let i = 0; i < 8; i++) n = n * 256 + b[o + i]!;
  return n;
};

/** Layout only: `0x01 ‖ id(16) ‖ u64 issued ‖ u64 expires ‖ pub(32) ‖ u8 len ‖ name ‖ sig(64)`. */
export function parseCert(cert: Uint8Array): Credential {
  const fixed = 1 + 16 + 8 + 8 + 32 + 1;
  if (cert.length < fixed + 1 + SIG_LEN || cert[0] !== 1) throw new CredentialError("malformed", "This is not a therapist credential.");
  const nameLen = cert[fixed - 1]!;
  if (cert.length !== fixed + nameLen + SIG_LEN) throw new CredentialError("malformed", "This credential has the wrong length.");
  let name: string;
  try {
    name = new TextDecoder("utf-8", { fatal: true }).decode(cert.slice(fixed, fixed + nameLen));
  } catch {
    throw new CredentialError("malformed", "This credential's name is not readable.");
  }
  const id = [...cert.slice(1, 17)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { id, name, issuedAt: readU64(cert, 17), expiresAt: readU64(cert, 25), publicKey: cert.slice(33, 65) };
}

/** Signature by the server key, then expiry (revocation is checked by the server at sign-in). */
export function verifyCert(serverPublic: Uint8Array, cert: Uint8Array, nowS: number = Date.now() / 1000): Credential {
  const cred = parseCert(cert);
  const body = cert.slice(0, cert.length - SIG_LEN);
  const sig = cert.slice(cert.length - SIG_LEN);
  if (!ed25519Verify(serverPublic, sig, concat(ds("therapist-cert"), body))) {
    throw new CredentialError("tampered", "This credential was not issued by this server, or it was changed.");
  }
  if (nowS >= cred.expiresAt) throw new CredentialError("expired", "This credential has expired. Ask the operator for a new one.");
  return cred;
}

/** A badge `u16 len ‖ cert ‖ sig(room ‖ host)`, checked as members do before showing "verified". */
export function verifyBadge(serverPublic: Uint8Array, badge: Uint8Array, roomId: Uint8Array, hostId: Uint8Array): Credential {
  if (badge.length < 2) throw new CredentialError("malformed", "badge too short");
  const n = badge[0]! * 256 + badge[1]!;
  const cert = badge.slice(2, 2 + n);
  const sig = badge.slice(2 + n);
  if (sig.length !== SIG_LEN) throw new CredentialError("malformed", "badge has the wrong length");
  const cred = verifyCert(serverPublic, cert);
  if (!ed25519Verify(cred.publicKey, sig, concat(ds("therapist-badge"), roomId, hostId))) {
    throw new CredentialError("tampered", "the badge is not bound to this room's host");
  }
  return cred;
}

export const signInProof = (seed: Uint8Array, nonce: Uint8Array): Uint8Array => ed25519Sign(seed, concat(ds("therapist-signin"), nonce));

export function makeBadge(cert: Uint8Array, seed: Uint8Array, roomId: Uint8Array, hostId: Uint8Array): Uint8Array {
  return concat(u16(cert.length), cert, ed25519Sign(seed, concat(ds("therapist-badge"), roomId, hostId)));
}

export const admissionMessage = (roomId: Uint8Array, epoch: number, card: Uint8Array): Uint8Array => concat(ds("admit"), roomId, u32(epoch), card);

/** The server's published verifying key (fetched from this origin only). */
export async function serverKey(): Promise<{ key: Uint8Array; reasons: string[] }> {
  const res = await fetch(WELL_KNOWN, { credentials: "omit", cache: "no-store" });
  if (!res.ok) throw new Error("no key");
  const doc = (await res.json()) as { keys?: Array<{ alg: string; public_key: string }>; report_reasons?: string[] };
  const entry = doc.keys?.find((k) => k.alg === "Ed25519");
  const key = entry ? unb64(entry.public_key, 32) : null;
  if (!key) throw new Error("no key");
  return { key, reasons: doc.report_reasons ?? [] };
}

let cachedKey: Promise<{ key: Uint8Array; reasons: string[] }> | null = null;

/** The host's verified name from a badge (as the waiting room and the directory show it), or null
 * when there is no badge or it does not verify against this server's published key. */
export async function verifiedHostName(badge: unknown, roomId: string, hostId: unknown): Promise<string | null> {
  if (!(badge instanceof Uint8Array) || typeof hostId !== "string") return null;
  cachedKey ??= serverKey().catch((e: unknown) => {
    cachedKey = null;
    throw e;
  });
  try {
    const { key } = await cachedKey;
    return verifyBadge(key, badge, unb64id(roomId), unb64id(hostId)).name;
  } catch {
    return null;
  }
}
