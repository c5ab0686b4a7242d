// Known-answer tests of the primitives the browser uses: RFC vectors and Wycheproof,
// the same files the Python suite runs (tests/vectors/rfc, tests/vectors/wycheproof).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import * as e from "../test-build/e2ee.mjs";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { x25519 } from "@noble/curves/ed25519.js";

const VECTORS = new URL("../../tests/vectors/", import.meta.url);
const load = (p) => JSON.parse(readFileSync(new URL(p, VECTORS), "utf8"));
const H = e.unhex;
const hex = e.hex;

test("HMAC-SHA256 RFC 4231", () => {
  for (const t of load("rfc/hmac_sha256_rfc4231.json").tests) {
    const mac = hex(e.hmacSha256(H(t.key), H(t.data)));
    assert.equal(t.truncate ? mac.slice(0, 2 * t.truncate) : mac, t.mac, t.name);
  }
});

test("HKDF-SHA256 RFC 5869", () => {
  for (const t of load("rfc/hkdf_sha256_rfc5869.json").tests) {
    assert.equal(hex(e.hkdfSha256(H(t.ikm), H(t.salt), H(t.info), t.length)), t.okm, t.name);
  }
});

test("HKDF-SHA256 Wycheproof", () => {
  let n = 0;
  for (const g of load("wycheproof/hkdf_sha256_test.json").testGroups) {
    for (const t of g.tests) {
      if (t.result === "valid") {
        assert.equal(hex(e.hkdfSha256(H(t.ikm), H(t.salt), H(t.info), t.size)), t.okm, `tc ${t.tcId}`);
      } else {
        assert.throws(() => e.hkdfSha256(H(t.ikm), H(t.salt), H(t.info), t.size), `tc ${t.tcId}`);
      }
      n++;
    }
  }
  assert.ok(n > 50);
});

test("ChaCha20-Poly1305 RFC 8439", () => {
  for (const t of load("rfc/chacha20_poly1305_rfc8439.json").tests) {
    const sealed = e.aeadSeal(H(t.key), H(t.nonce), H(t.plaintext), H(t.aad));
    assert.equal(hex(sealed), t.ciphertext + t.tag, t.name);
    assert.equal(hex(e.aeadOpen(H(t.key), H(t.nonce), sealed, H(t.aad))), t.plaintext, t.name);
  }
});

test("ChaCha20-Poly1305 Wycheproof (both directions)", () => {
  let n = 0;
  for (const g of load("wycheproof/chacha20_poly1305_test.json").testGroups) {
    for (const t of g.tests) {
      const key = H(t.key);
      const iv = H(t.iv);
      const ct = H(t.ct + t.tag);
      if (iv.length !== 12 || key.length !== 32) {
        // Our wrapper is only ever called with 96-bit nonces: any other size must be refused.
        assert.throws(() => chacha20poly1305(key, iv, H(t.aad)).encrypt(H(t.msg)), `tc ${t.tcId}`);
        continue;
      }
      if (t.result === "valid") {
        assert.equal(hex(e.aeadSeal(key, iv, H(t.msg), H(t.aad))), t.ct + t.tag, `tc ${t.tcId}`);
        assert.equal(hex(e.aeadOpen(key, iv, ct, H(t.aad))), t.msg, `tc ${t.tcId}`);
      } else {
        assert.throws(() => e.aeadOpen(key, iv, ct, H(t.aad)), (err) => err.code === "aead", `tc ${t.tcId}`);
      }
      n++;
    }
  }
  assert.ok(n > 200);
});

test("Ed25519 RFC 8032 (sign and verify)", () => {
  for (const t of load("rfc/ed25519_rfc8032.json").tests) {
    assert.equal(hex(e.ed25519Public(H(t.secret))), t.public, t.name);
    assert.equal(hex(e.ed25519Sign(H(t.secret), H(t.message))), t.signature, t.name);
    assert.ok(e.ed25519Verify(H(t.public), H(t.signature), H(t.message)), t.name);
  }
});

test("Ed25519 Wycheproof, strict verification as OpenSSL does it", () => {
  let n = 0;
  for (const g of load("wycheproof/ed25519_test.json").testGroups) {
    const pk = H(g.publicKey.pk);
    for (const t of g.tests) {
      const ok = e.ed25519Verify(pk, H(t.sig), H(t.msg));
      if (t.result === "valid") assert.equal(ok, true, `tc ${t.tcId}`);
      else if (t.result === "invalid") assert.equal(ok, false, `tc ${t.tcId} ${t.comment}`);
      else if (t.flags.includes("SmallOrderPublicKey")) {
        // OpenSSL accepts these, noble refuses them: cards reject such keys up front.
        assert.equal(e.ed25519PublicIsAcceptable(pk), false, `tc ${t.tcId}`);
      } else {
        // MixedOrderPublicKey: OpenSSL (the server, the Python client) accepts; so must we.
        assert.equal(ok, true, `tc ${t.tcId} ${t.comment}`);
      }
      n++;
    }
  }
  assert.ok(n > 100);
});

test("X25519 RFC 7748", () => {
  const v = load("rfc/x25519_rfc7748.json");
  for (const t of v.scalar_mult) assert.equal(hex(x25519.scalarMult(H(t.scalar), H(t.u))), t.output, t.name);
  let k = H(v.iterated.start);
  let u = H(v.iterated.start);
  for (let i = 1; i <= 1000; i++) {
    const next = x25519.scalarMult(k, u);
    u = k;
    k = next;
    if (i === 1) assert.equal(hex(k), v.iterated.after_1);
  }
  assert.equal(hex(k), v.iterated.after_1000);
  const dh = v.dh_6_1;
  assert.equal(hex(e.x25519Public(H(dh.alice_private))), dh.alice_public);
  assert.equal(hex(e.x25519Public(H(dh.bob_private))), dh.bob_public);
  assert.equal(hex(e.x25519Shared(H(dh.alice_private), H(dh.bob_public))), dh.shared);
});

test("X25519 Wycheproof; small-order keys are refused by the card check", () => {
  let n = 0;
  for (const g of load("wycheproof/x25519_test.json").testGroups) {
    for (const t of g.tests) {
      const zero = /^0+$/.test(t.shared);
      if (zero) {
        assert.equal(e.x25519PublicIsAcceptable(H(t.public)), false, `tc ${t.tcId}`);
      } else {
        assert.equal(hex(x25519.scalarMult(H(t.private), H(t.public))), t.shared, `tc ${t.tcId}`);
      }
      n++;
    }
  }
  assert.ok(n > 400);
});

test("HPKE base mode round trip (X25519, HKDF-SHA256, ChaCha20-Poly1305)", async () => {
  const seed = H("a2".repeat(32));
  const info = e.utf8("info");
  const blob = await e.hpkeSeal(e.x25519Public(seed), info, e.utf8("secret chain key"));
  assert.equal(blob.length, 32 + 16 + 16);
  assert.equal(new TextDecoder().decode(await e.hpkeOpen(seed, info, blob)), "secret chain key");
  await assert.rejects(e.hpkeOpen(seed, e.utf8("other"), blob), (err) => err.code === "aead");
});
