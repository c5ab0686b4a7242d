// Signed Q&A questions (src/e2ee/question.ts, mirrors chatserver/e2ee/question.py): the
// `question` vector of tests/vectors/project.json reproduced byte for byte from alice's seed,
// and the sealed round trip refusing a relabelled asker, another host or a tampered blob.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bundle, projectVectors } from "../test-support/bundle.mjs";

const e = await bundle("question", ["index.ts", "question.ts"]);

const { V, H, hex, ids, identity, ROOM } = await projectVectors(e);
const Q = V.question;
const cardOf = (name) => e.parseCard(H(ids[name].card), ROOM);

test("question vector: signed message and json||sig reproduce byte for byte", () => {
  const asker = identity(Q.asker);
  const host = H(ids[Q.host].member_id);
  const json = e.utf8(Q.json);
  assert.equal(hex(e.questionMessage(ROOM, asker.memberId, host, json)), Q.signed);
  assert.equal(hex(e.signQuestion(asker, ROOM, host, json)), Q.plaintext);
  // The browser's own encoding of the same question is the same bytes.
  const parsed = JSON.parse(Q.json);
  assert.equal(hex(e.questionBody(parsed.text, parsed.consent)), hex(json));
  assert.equal(hex(e.openQuestion(H(Q.plaintext), ROOM, asker.memberId, asker.edPublic, host)), hex(json));
});

test("question vector: refused under another asker, host, room or with a changed byte", () => {
  const alice = H(ids.alice.member_id);
  const bob = H(ids.bob.member_id);
  const pub = H(ids.alice.ed_public);
  const pt = H(Q.plaintext);
  const bad = (fn) => assert.throws(fn, (err) => err.code === "bad_signature" || err.code === "bad_length");
  bad(() => e.openQuestion(pt, ROOM, bob, H(ids.bob.ed_public), alice)); // relabelled: bob asked?
  bad(() => e.openQuestion(pt, ROOM, alice, pub, alice)); // sealed for another host
  bad(() => e.openQuestion(pt, new Uint8Array(16), alice, pub, bob));
  const flipped = pt.slice();
  flipped[3] ^= 1;
  bad(() => e.openQuestion(flipped, ROOM, alice, pub, bob));
  bad(() => e.openQuestion(pt.slice(0, 64), ROOM, alice, pub, bob));
  bad(() => e.openQuestion(pt.slice(Q.json.length), ROOM, alice, pub, bob)); // the bare signature
});

test("sealed question: the host opens it, checks the asker's card, reads text and consent", async () => {
  const alice = identity("alice");
  const bob = identity("bob");
  const sealed = await e.sealQuestion(alice, ROOM, cardOf("bob"), e.questionBody("Is it normal to feel numb?", true));
  const q = await e.openSealedQuestion(bob, ROOM, cardOf("alice"), sealed);
  assert.deepEqual(q, { text: "Is it normal to feel numb?", consent: true });
  // Sealed to bob's key, but named as coming from someone else: refused.
  const mallory = e.Identity.generate();
  const malloryCard = e.parseCard(mallory.card(ROOM, 1_700_000_000_002), ROOM);
  await assert.rejects(e.openSealedQuestion(bob, ROOM, malloryCard, sealed));
  // Mallory seals to bob with her key but signs nothing valid for alice: refused as alice.
  const forged = await e.hpkeSeal(cardOf("bob").xPublic, e.questionSealInfo(ROOM, alice.memberId, bob.memberId), e.concat(e.utf8('{"text":"hi","consent":false}'), new Uint8Array(64)));
  await assert.rejects(e.openSealedQuestion(bob, ROOM, cardOf("alice"), forged), (err) => err.code === "bad_signature");
  // A signed question that is not a type-1 body: refused.
  const notText = await e.sealQuestion(alice, ROOM, cardOf("bob"), e.utf8('{"consent":true}'));
  await assert.rejects(e.openSealedQuestion(bob, ROOM, cardOf("alice"), notText), (err) => err.code === "malformed");
});

test("Python's open_question format: a plaintext without the signature is refused", async () => {
  // Before issue 12 the plaintext was the bare JSON: a host must not accept it any more.
  const alice = identity("alice");
  const bob = identity("bob");
  const old = await e.hpkeSeal(cardOf("bob").xPublic, e.questionSealInfo(ROOM, alice.memberId, bob.memberId), e.utf8(Q.json));
  await assert.rejects(e.openSealedQuestion(bob, ROOM, cardOf("alice"), old));
});
