#!/usr/bin/env node
// Builds the browser pages into dist/web/ with esbuild: the till (/app/), its service worker,
// and the audit view (/audit/). The till runs the same client/ code as the Node device; the few
// Node-only modules that code reaches are mapped to browser versions here, and any other Node
// module is a build error (platform "browser" has none). Usage: node tools/build-web.mjs [outDir]
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const target = path.resolve(process.argv[2] ?? path.join(root, "dist", "web"));
// Built beside the target and swapped in at the end: a build killed halfway leaves the previous
// pages whole (or none), never a page without its script.
const out = `${target}.building-${process.pid}`;
const src = (p) => path.join(root, "client", p);

await rm(out, { recursive: true, force: true });
await mkdir(path.join(out, "app"), { recursive: true });
await mkdir(path.join(out, "audit"), { recursive: true });

/**
 * Every `@automerge/automerge` import becomes the slim build (one copy of Automerge, no wasm
 * inlined as base64): the till fetches the wasm file itself (initializeWasm in web/till/main.ts).
 * A plugin, not `alias`: an alias would also rewrite `@automerge/automerge/slim` by its prefix.
 */
const slimAutomerge = {
  name: "slim-automerge",
  setup(b) {
    b.onResolve({ filter: /^@automerge\/automerge$/ }, (args) =>
      b.resolve("@automerge/automerge/slim", { kind: args.kind, resolveDir: args.resolveDir }),
    );
  },
};

const common = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
  define: { "process.env.NODE_ENV": '"production"' },
};

await build({
  ...common,
  entryPoints: { "app/till": src("web/till/main.ts"), "audit/audit": src("web/audit/main.ts") },
  outdir: out,
  alias: {
    "node:crypto": src("browser/node-crypto.ts"),
    jsonwebtoken: src("browser/no-jsonwebtoken.ts"),
  },
  plugins: [slimAutomerge],
});

/** The one page of each view: a shell its script fills. */
const page = (title, id, script) => `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${title} · ledger-sync</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="./style.css">
  <script type="module" src="./${script}"></script>
</head>
<body>
  <div id="${id}" class="app"><p class="card" role="status">Loading…</p></div>
  <noscript>This page needs JavaScript.</noscript>
</body>
</html>
`;
await writeFile(path.join(out, "app", "index.html"), page("Till", "till", "till.js"));
await writeFile(path.join(out, "audit", "index.html"), page("Audit", "audit", "audit.js"));
for (const dir of ["app", "audit"]) await copyFile(path.join(root, "client", "web", "style.css"), path.join(out, dir, "style.css"));
await copyFile(path.join(root, "node_modules", "@automerge", "automerge", "dist", "automerge.wasm"), path.join(out, "app", "automerge.wasm"));

// The service worker caches what it is told, under a name that changes with the content: a new
// build replaces the old cache at once instead of serving a stale till next to a new API.
const appFiles = (await readdir(path.join(out, "app"))).sort();
const hash = createHash("sha256");
for (const f of appFiles) hash.update(f).update(await readFile(path.join(out, "app", f)));
const version = hash.digest("hex").slice(0, 16);
await build({
  ...common,
  entryPoints: { "app/sw": src("web/till/sw.ts") },
  outdir: out,
  define: { ...common.define, __CACHE_NAME__: JSON.stringify(`till-${version}`), __APP_FILES__: JSON.stringify(["./", ...appFiles.filter((f) => f !== "index.html")]) },
});
await writeFile(path.join(out, "version.json"), `${JSON.stringify({ version })}\n`);
const old = `${target}.old-${process.pid}`;
await rename(target, old).catch((err) => {
  if (err.code !== "ENOENT") throw err;
});
await rename(out, target);
await rm(old, { recursive: true, force: true });
process.stderr.write(`ledger-sync: browser pages built into ${path.relative(root, target) || target} (version ${version})\n`);
