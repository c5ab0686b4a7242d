// Wire constants for envelope format v1 / suite 0x01 (mirrors chatserver/e2ee/constants.py).
export const VERSION = 1;
export const SUITE = 1;
export const SKD_TYPE = 2;
export const ID_LEN = 16;
export const KEY_LEN = 32;
export const SALT_LEN = 16;
export const NONCE_LEN = 12;
export const TAG_LEN = 16;
export const SIG_LEN = 64;
export const HEADER_LEN = 130;
export const BUCKETS: readonly number[] = [8, 9, 10, 11, 12, 13, 14, 15, 16].map((n) => 1 << n);
export const MAX_PADDED = 65536;
export const MAX_ENVELOPE_LEN = HEADER_LEN + MAX_PADDED + TAG_LEN + SIG_LEN;
export const PAYLOAD_PREFIX_LEN = KEY_LEN + 1 + 8;
export const MAX_BODY_LEN = MAX_PADDED - PAYLOAD_PREFIX_LEN - 1;
export const CARD_BODY_LEN = 1 + ID_LEN + ID_LEN + 32 + 32 + 8;
export const CARD_LEN = CARD_BODY_LEN + SIG_LEN;
export const SKD_PLAIN_LEN = 1 + ID_LEN + ID_LEN + 4 + 4 + 4 + KEY_LEN;
export const SKD_BLOB_LEN = 32 + SKD_PLAIN_LEN + TAG_LEN;
export const SKD_HEADER_LEN = 1 + 1 + ID_LEN * 3 + 4 + 4 + 2;
export const SKD_LEN = SKD_HEADER_LEN + SKD_BLOB_LEN + SIG_LEN;
export const MAX_SKIP = 1000;
export const MAX_SKIPPED_KEYS = 256;
export const SKIPPED_KEY_TTL_MS = 5 * 60 * 1000;
export const MAX_CHAINS_PER_SENDER = 5;
/** Evicted or dropped chains of one sender remembered per epoch (never reinstalled). */
export const MAX_TOMBSTONES_PER_SENDER = 1024;
export const ROTATE_AFTER_MESSAGES = 100;
export const ROTATE_AFTER_MS = 60 * 60 * 1000;
export const SAFETY_ITERATIONS = 5200;
export const SAFETY_DIGITS = 40;
export const SAFETY_GROUP = 5;
export const JOIN_NONCE_MIN = 16;
export const JOIN_NONCE_MAX = 64;
export const META_MAX_TEXT = 1024;
export const META_BLOCK = 64;
export const MSG_TYPE_TEXT = 1;
// Body profile of type-1 (text) bodies: I-JSON (RFC 7493), see docs/e2ee.md section 6.
/** Deepest nesting of objects and arrays in a type-1 body; the top-level object is depth 1. */
export const MAX_JSON_DEPTH = 16;
/** Longest number literal (characters), checked before it is converted. */
export const MAX_NUMBER_LEN = 32;
/** Largest integer magnitude in a type-1 body, and the largest client_ts_ms (2^53 - 1). */
export const MAX_SAFE_INTEGER = 9007199254740991;
export const U32_MAX = 0xffffffff;

/** Domain-separation tag "chatenv/v1 " ‖ label ‖ 0x00. */
export function ds(label: string): Uint8Array {
  const s = `chatenv/v1 ${label}`;
  const out = new Uint8Array(s.length + 1);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
