// Build the web client into dist/ (what the server serves) and, for `npm test`, the E2EE module
// into test-build/ for Node's test runner. Usage: node build.mjs [--test-only] [--watch]
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
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

// Files the server may send compressed: each gets a .br (max quality) and a .gz (-9) next to it.
const COMPRESSIBLE = /\.(js|css|txt|json|svg|html)$/;

async function precompress(file) {
  const data = await readFile(file);
  const br = zlib.brotliCompressSync(data, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
  await writeFile(`${file}.br`, br);
  await writeFile(`${file}.gz`, zlib.gzipSync(data, { level: 9 }));
}

async function buildApp() {
  const dist = path.join(here, "dist");
  await rm(dist, { recursive: true, force: true });
  await mkdir(dist, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: path.join(here, "src/main.ts"), style: path.join(here, "src/style.css") },
    absWorkingDir: here, // metafile paths are relative to web/
    outdir: dist,
    // Content-hashed names: the server caches /static/ for a year (immutable); a new build is new
    // names, and index.html (never cached) points at them. A dynamic import() becomes a chunk.
    entryNames: "[name].[hash]",
    chunkNames: "chunk.[name].[hash]",
    splitting: true,
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
  const outputs = Object.entries(result.metafile.outputs);
  const entry = (src) => {
    const found = outputs.find(([, o]) => o.entryPoint === src);
    if (!found) throw new Error(`build: no output for ${src}`);
    return path.basename(found[0]);
  };
  const appJs = entry("src/main.ts");
  const styleCss = entry("src/style.css");
  const consoleJs = entry("src/console/console.ts"); // the therapist console, loaded by import()
  // The chunks the entry imports statically (code it shares with the console chunk): preloaded
  // from index.html, so the first load fetches them alongside app.js, not one round trip later.
  const preload = [];
  const visit = (file) => {
    for (const dep of result.metafile.outputs[file]?.imports ?? []) {
      if (dep.kind !== "import-statement" || dep.external || preload.includes(dep.path)) continue;
      preload.push(dep.path);
      visit(dep.path);
    }
  };
  visit(`dist/${appJs}`);
  const preloaded = preload.map((p) => path.basename(p));
  if (preloaded.includes(consoleJs)) throw new Error("build: the console chunk is in the participant's first load");
  const template = await readFile(path.join(here, "index.html"), "utf8");
  for (const ref of ["/static/app.js", "/static/style.css"]) {
    if (!template.includes(`"${ref}"`)) throw new Error(`build: index.html does not reference ${ref}`);
  }
  const script = '<script type="module" src="/static/app.js"></script>';
  if (!template.includes(script)) throw new Error("build: index.html does not load /static/app.js as a module");
  const html = template
    .replace(script, [...preloaded.map((c) => `<link rel="modulepreload" href="/static/${c}">`), script].join("\n"))
    .replace('"/static/app.js"', `"/static/${appJs}"`)
    .replace('"/static/style.css"', `"/static/${styleCss}"`);
  await writeFile(path.join(dist, "index.html"), html);
  for (const [out] of outputs) {
    if (COMPRESSIBLE.test(out)) await precompress(path.join(here, out));
  }
  // What tools and tests look up instead of guessing hashed names: the entry, the stylesheet, the
  // chunks the first load preloads, and the console chunk (never part of the first load).
  await writeFile(
    path.join(dist, "manifest.json"),
    JSON.stringify({ "app.js": appJs, "style.css": styleCss, "console.js": consoleJs, preload: preloaded }, null, 2) + "\n",
  );
  await mkdir(path.join(here, "test-build"), { recursive: true });
  await writeFile(path.join(here, "test-build/meta.json"), JSON.stringify(result.metafile));
}

await buildTests();
if (!testOnly) await buildApp();
