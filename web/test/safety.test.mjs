// The pure parts of src/safety/: phrase detection, crisis-line choice, mood trend.
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { test } from "node:test";
import * as esbuild from "esbuild";

const out = new URL("../test-build/safety.mjs", import.meta.url).pathname;
await mkdir(new URL("../test-build/", import.meta.url).pathname, { recursive: true });
await esbuild.build({
  stdin: { contents: 'export * from "./crisis.ts"; export * from "./lines.ts"; export * from "./mood.ts";', resolveDir: new URL("../src/safety/", import.meta.url).pathname, loader: "ts" },
  outfile: out, bundle: true, format: "esm", platform: "node", logLevel: "warning",
});
const s = await import(out);

test("crisis phrases match whole words in several languages, after folding", () => {
  assert.equal(s.detect("I just want to END IT ALL"), "suicide");
  assert.equal(s.detect("I can’t go on like this"), "despair");
  assert.equal(s.detect("ich will mich ritzen"), "self_harm");
  assert.equal(s.detect("j'ai envie de mourir"), "suicide");
  assert.equal(s.detect("quiero morir"), "suicide");
  assert.equal(s.detect("SUICIDIO"), "suicide");
  assert.equal(s.detect("the suicide squad film"), "suicide"); // offers help; never blocks
  assert.equal(s.detect("I killed it at work today"), null);
  assert.equal(s.detect("selfharming"), null);
  assert.equal(s.detect(""), null);
});

test("every phrase list is well formed", () => {
  for (const l of s.PHRASE_LISTS) {
    assert.match(l.language, /^[a-z]{2}$/);
    assert.ok(l.reviewed);
    for (const phrases of Object.values(l.categories)) for (const p of phrases) assert.equal(typeof p, "string");
  }
});

const RES = {
  resources: [
    { name: "Samaritans", countries: ["GB", "IE"], languages: ["en"], phone: "116 123" },
    { name: "988", countries: ["US"], languages: ["en", "es"], phone: "988" },
    { name: "TelefonSeelsorge", countries: ["DE"], languages: ["de"] },
    { name: "Die Dargebotene Hand", countries: ["CH"], languages: ["de", "fr", "it"] },
  ],
};

test("lines come from the language's region, else the time zone, else the language", () => {
  assert.deepEqual(s.pickLines(RES, ["en-GB"], "America/New_York").map((l) => l.name), ["Samaritans"]);
  assert.deepEqual(s.pickLines(RES, ["en"], "America/Chicago").map((l) => l.name), ["988"]);
  assert.deepEqual(s.pickLines(RES, ["de"], "Europe/Zurich").map((l) => l.name), ["Die Dargebotene Hand"]);
  assert.deepEqual(s.pickLines(RES, ["de"], "Asia/Tokyo").map((l) => l.name), ["TelefonSeelsorge", "Die Dargebotene Hand"]);
  assert.deepEqual(s.pickLines(RES, ["ja"], "Asia/Tokyo"), []);
});

test("mood keeps dropping: three falling check-ins, or three sessions ending lower", () => {
  const e = (phase, v) => ({ t: 0, phase, v });
  assert.equal(s.keepsDropping([e("in", 4), e("in", 3), e("in", 2)]), true);
  assert.equal(s.keepsDropping([e("in", 4), e("in", 4), e("in", 2)]), false);
  assert.equal(s.keepsDropping([e("in", 3), e("out", 2), e("in", 4), e("out", 3), e("in", 3), e("out", 1)]), true);
  assert.equal(s.keepsDropping([e("in", 3), e("out", 4)]), false);
  const store = new Map();
  const st = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
  s.addMood(st, e("in", 3));
  assert.equal(s.loadMood(st).length, 1);
  store.set(s.MOOD_KEY, "not json");
  assert.deepEqual(s.loadMood(st), []);
});
