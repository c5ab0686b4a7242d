// Build the web client into dist/ (what the server serves) and, for `npm test`, the E2EE module
// into test-build/ for Node's test runner. Usage: node build.mjs [--test-only] [--watch]
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const testOnly = process.argv.includes("--test-only");

async function buildTests() {
  await esbuild.build({
    entryPoints: [path.join(here, "src/e2ee/index.ts")],
    outfile: path.join(here, "test-build/e2ee.mjs"),
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "warning",
  });
}

async function buildApp() {
  const dist = path.join(here, "dist");
  await rm(dist, { recursive: true, force: true });
  await mkdir(dist, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: path.join(here, "src/main.ts"), style: path.join(here, "src/style.css") },
    outdir: dist,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022", "chrome110", "firefox115", "safari16"],
    minify: true,
    sourcemap: false,
    legalComments: "external",
    metafile: true,
    logLevel: "warning",
  });
  // Content hashes in the query string bust caches after an upgrade without renaming files.
  const hashOf = async (f) =>
    createHash("sha256").update(await readFile(path.join(dist, f))).digest("hex").slice(0, 12);
  const html = (await readFile(path.join(here, "index.html"), "utf8"))
    .replace("/static/app.js", `/static/app.js?v=${await hashOf("app.js")}`)
    .replace("/static/style.css", `/static/style.css?v=${await hashOf("style.css")}`);
  await writeFile(path.join(dist, "index.html"), html);
  await mkdir(path.join(here, "test-build"), { recursive: true });
  await writeFile(path.join(here, "test-build/meta.json"), JSON.stringify(result.metafile));
}

await buildTests();
if (!testOnly) await buildApp();
