// The single exception type of the E2EE layer (mirrors chatserver/e2ee/errors.py).
export const ERROR_CODES = [
  "malformed",
  "unknown_version",
  "unknown_suite",
  "bad_length",
  "bad_signature",
  "bad_card",
  "wrong_room",
  "wrong_sender",
  "wrong_recipient",
  "own_message",
  "old_epoch",
  "future_epoch",
  "unknown_chain",
  "replay",
  "too_far_ahead",
  "key_commitment",
  "aead",
  "padding",
  "franking",
  "equivocation",
  "skd_mismatch",
  "bad_proof",
  "bad_stamp",
] as const;
export type E2EECode = (typeof ERROR_CODES)[number];

export class E2EEError extends Error {
  readonly code: E2EECode;
  constructor(code: E2EECode, detail = "") {
    super(detail ? `${code}: ${detail}` : code);
    this.code = code;
    this.name = "E2EEError";
  }
}
