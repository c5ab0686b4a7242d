// The type-1 body profile (docs/e2ee.md §6 "Body profile"; I-JSON, RFC 7493). The vectors in
// tests/vectors/body_profile.json are shared with tests/e2ee/test_body_profile.py: both clients
// must give the same verdict (and text) per case. Nothing but E2EEError may leave decrypt().
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import * as e from "../test-build/e2ee.mjs";

const V = JSON.parse(readFileSync(new URL("../../tests/vectors/body_profile.json", import.meta.url), "utf8"));
const ROOM = new Uint8Array(16).fill(7);
const T0 = 1_700_000_000_000;
const enc = (s) => new TextEncoder().encode(s);

/** A sender driven by hand (known chain key, any index, any body), like helpers.ManualSender. */
class ManualSender {
  constructor(keyId = 7) {
    this.identity = e.Identity.generate();
    this.card = this.identity.card(ROOM, T0);
    this.keyId = keyId;
    this.ck0 = Uint8Array.from({ length: 32 }, (_, i) => i);
  }
  skdFor(rc, startIndex = 0) {
    return e.sealSkd(this.identity, e.parseCard(rc.card), {
      roomId: ROOM,
      epoch: 1,
      keyId: this.keyId,
      startIndex,
      chainKey: e.advance(this.ck0, startIndex),
    });
  }
  mk(index) {
    return e.chainStep(e.advance(this.ck0, index))[0];
  }
  envelope(index, body = enc('{"text":"x"}'), msgType = 1) {
    return e.sealEnvelope(this.identity, {
      roomId: ROOM,
      epoch: 1,
      keyId: this.keyId,
      index,
      mk: this.mk(index),
      salt: new Uint8Array(16).fill(0x73),
      payload: { frankingKey: new Uint8Array(32).fill(0x66), msgType, clientTsMs: T0, body },
    });
  }
  /** Any u64 client_ts_ms (sealEnvelope refuses values a double cannot hold). */
  envelopeWithTs(index, ts) {
    const fbody = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0, ...enc('{"text":"ts"}')]);
    new DataView(fbody.buffer).setBigUint64(1, ts, false);
    const kf = new Uint8Array(32).fill(0x6b);
    const ctx = e.makeCtx(ROOM, this.identity.memberId, 1, this.keyId, index);
    return e.sealPadded(this.identity, {
      roomId: ROOM,
      epoch: 1,
      keyId: this.keyId,
      index,
      mk: this.mk(index),
      salt: new Uint8Array(16).fill(0x73),
      frankingCommit: e.frankingCommitment(kf, ctx, fbody),
      padded: e.pad(e.concat(kf, fbody)),
    });
  }
}

async function room() {
  const b = new e.RoomCrypto(e.Identity.generate(), ROOM, { epoch: 1 });
  const a = new ManualSender();
  b.addMember(a.card);
  await b.receiveKeyShare(await a.skdFor(b));
  return { a, b };
}

function codeOf(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof e.E2EEError, `not an E2EEError: ${err}`);
    return err.code;
  }
  return "ok";
}

test("the vector file covers the rules", () => {
  assert.ok(V.length >= 25);
  const names = new Set(V.map((v) => v.name));
  assert.equal(names.size, V.length);
  for (const must of ["max safe integer", "2^53", "negative zero", "float 1e308", "float 1e309", "depth 16",
    "depth 17", "depth 2000", "leading BOM", "NaN", "duplicate text", "lone high surrogate escape",
    "invalid UTF-8 byte ff", "top-level array", "missing text", "text is a number", "extra keys cw and quote"]) {
    assert.ok(names.has(must), must);
  }
});

test("every vector: same verdict and text as Python (decodeText)", () => {
  for (const v of V) {
    const body = e.unhex(v.body_hex);
    if (v.valid) {
      let got;
      assert.doesNotThrow(() => (got = e.decodeText(body)), v.name);
      assert.equal(got.text, v.text, v.name);
    } else {
      assert.equal(codeOf(() => e.decodeText(body)), "malformed", v.name);
    }
  }
});

test("every vector: same verdict through decrypt; a refused body wedges nothing", async () => {
  const { a, b } = await room();
  let i = 0;
  for (const v of V) {
    const env = a.envelope(i++, e.unhex(v.body_hex));
    if (v.valid) assert.equal(b.decrypt(env).text, v.text, v.name);
    else assert.equal(codeOf(() => b.decrypt(env)), "malformed", v.name);
    assert.equal(b.decrypt(a.envelope(i++)).text, "x");
  }
});

test("client_ts_ms must be below 2^53", async () => {
  for (const [ts, ok] of [[2n ** 53n - 1n, true], [2n ** 53n, false], [2n ** 64n - 1n, false]]) {
    const { a, b } = await room();
    if (ok) {
      assert.equal(b.decrypt(a.envelopeWithTs(0, ts)).clientTsMs, Number(ts));
    } else {
      assert.equal(codeOf(() => b.decrypt(a.envelopeWithTs(0, ts))), "malformed");
      assert.equal(b.decrypt(a.envelopeWithTs(0, BigInt(T0))).clientTsMs, T0); // key not burnt
    }
  }
});

test("the sender refuses what receivers refuse", () => {
  const a = new e.RoomCrypto(e.Identity.generate(), ROOM, { epoch: 1 });
  assert.equal(codeOf(() => a.encrypt(enc('{"text":"a","text":"b"}'))), "malformed");
  assert.equal(codeOf(() => a.encrypt(e.encodeText("x", { n: 2 ** 53 }))), "malformed");
  assert.equal(codeOf(() => a.encrypt(e.encodeText("x", { cw: "cw", quote: { seq: 1, text: "q" } }))), "ok");
  assert.equal(codeOf(() => a.encrypt(new Uint8Array([0xff]), 2)), "ok"); // other types stay opaque
});

test("__proto__ stays a plain own member", () => {
  const { obj } = e.decodeText(enc('{"text":"t","__proto__":{"x":1},"constructor":[]}'));
  assert.equal(Object.getPrototypeOf(obj), Object.prototype);
  assert.deepEqual(Object.keys(obj), ["text", "__proto__", "constructor"]);
  assert.equal(obj.x, undefined);
});

const HOSTILE = [
  "[".repeat(e.MAX_BODY_LEN),
  '{"text":"a","n":' + "[".repeat(60000),
  '{"text":"a","n":' + '{"a":'.repeat(10000),
  '{"text":"a","n":' + "9".repeat(60000) + "}",
  '{"text":"a","n":-' + "1".repeat(5000) + "e99999}",
  '{"text":"a","n":1e' + "9".repeat(5000) + "}",
  '{"text":"a","n":0.' + "0".repeat(5000) + "1}",
  '{"text":"a","n":NaN}',
  '{"text":"\\ud800"}',
  '{"text":"' + "\\u".repeat(1000) + '"}',
  '{"text":"' + "a".repeat(60000),
  "{",
  '{"text":"\\u00',
  '{"text":"\\ud800\\u',
  '{"text":-',
].map(enc);

test("hostile bodies are malformed, in decodeText and in decrypt", async () => {
  const { a, b } = await room();
  let i = 0;
  for (const body of [...HOSTILE, new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), new Uint8Array(256).map((_, j) => j)]) {
    assert.equal(codeOf(() => e.decodeText(body)), "malformed");
    if (body.length <= e.MAX_BODY_LEN) assert.equal(codeOf(() => b.decrypt(a.envelope(i++, body))), "malformed");
    assert.equal(b.decrypt(a.envelope(i++)).text, "x");
  }
});

test("decrypt throws only E2EEError for any garbage", async () => {
  const { a, b } = await room();
  const env = a.envelope(0, enc('{"text":"the message"}'));
  const flip = (off, mask) => {
    const c = env.slice();
    c[off] ^= mask;
    return c;
  };
  const garbage = [
    null, undefined, 0, -1, 1.5, "text", [1, 2, 3], { length: 500 }, {}, new Uint8Array(0),
    new Uint8Array([1]), new Uint8Array([1, 1]), env.subarray(0, 200), env.slice(0, -1),
    e.concat(env, new Uint8Array(1)), e.concat(env.slice(0, 130), new Uint8Array(env.length - 130)),
    new Uint8Array(randomBytes(env.length)), e.concat(new Uint8Array([1, 1]), new Uint8Array(randomBytes(env.length - 2))),
    new Uint8Array(70000).fill(0xff), new Uint16Array(300), new ArrayBuffer(466),
  ];
  for (let off = 0; off < env.length; off += 7) garbage.push(flip(off, 0x01), flip(off, 0x80));
  for (const g of garbage) assert.notEqual(codeOf(() => b.decrypt(g)), "ok");
  assert.equal(b.decrypt(env).text, "the message"); // nothing burnt or wedged
});

test("random and mutated bodies always get a verdict", () => {
  const base = enc('{"text":"h\\u00e9\\ud83d\\ude00","n":[1,-0.5e3,true,null],"o":{"k":"v"}}');
  for (let n = 0; n < 2000; n++) {
    const body = n % 2 ? new Uint8Array(randomBytes(n % 300)) : base.slice();
    if (n % 2 === 0) for (let k = 0; k <= n % 4; k++) body[(n * 31 + k * 17) % body.length] = (n * 7 + k) & 0xff;
    assert.ok(["ok", "malformed"].includes(codeOf(() => e.decodeText(body))));
  }
});
