// Bundles TypeScript sources for a node test with esbuild (one output file per test), so that each
// test imports exactly the modules the browser build ships.
import { mkdir } from "node:fs/promises";
import * as esbuild from "esbuild";

/** Bundle `modules` (paths relative to src/`dir`/) into test-build/`name`.mjs and import it. */
export async function bundle(name, modules, { dir = "e2ee", ...options } = {}) {
  const out = new URL(`../test-build/${name}.mjs`, import.meta.url).pathname;
  await mkdir(new URL("../test-build/", import.meta.url).pathname, { recursive: true });
  await esbuild.build({
    stdin: {
      contents: modules.map((m) => `export * from "./${m}";`).join("\n"),
      resolveDir: new URL(`../src/${dir}/`, import.meta.url).pathname,
      loader: "ts",
    },
    outfile: out, bundle: true, format: "esm", platform: "node", logLevel: "warning",
    ...options,
  });
  return import(out);
}

/** The project vectors (tests/vectors/project.json) with what every vector test derives from
 * them through the bundle `e`: hex helpers, the room id and secret, alice's and bob's identities. */
export async function projectVectors(e) {
  const { readFile } = await import("node:fs/promises");
  const V = JSON.parse(await readFile(new URL("../../tests/vectors/project.json", import.meta.url), "utf8"));
  const H = e.unhex;
  const ids = Object.fromEntries(V.identities.map((i) => [i.name, i]));
  return {
    V,
    H,
    hex: e.hex,
    ids,
    identity: (name) => e.Identity.fromSeeds(H(ids[name].ed_seed), H(ids[name].x_seed)),
    ROOM: H(V.room.room_id),
    rs: e.deriveRoomSecret(H(V.room.secret)),
  };
}

/** The client replica fixtures (tests/vectors/replica.json; docs/e2ee.md, "Client replica
 * fixtures"), the same file tests/e2ee/test_replica_fixtures.py reads: every `{"$bin": hex}`
 * becomes a Uint8Array (what `fromWire` makes of a msgpack bin). */
export async function replicaFixtures() {
  const { readFile } = await import("node:fs/promises");
  const text = await readFile(new URL("../../tests/vectors/replica.json", import.meta.url), "utf8");
  return JSON.parse(text, (_key, value) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      const keys = Object.keys(value);
      if (keys.length === 1 && keys[0] === "$bin") return new Uint8Array(Buffer.from(value.$bin, "hex"));
    }
    return value;
  });
}
