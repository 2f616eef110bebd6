#!/usr/bin/env bash
# Runs after `npm install`: compiles the TypeScript into dist/ (every entry point runs from
# there under plain node), then builds the embedded database server unless the machine does
# not need or cannot build it. Progress goes to stderr, which npm shows.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "ledger-sync: compiling TypeScript into dist/ ..." >&2
npx tsc -p tsconfig.build.json
echo "ledger-sync: bundling the till (/app/) and the audit view (/audit/) into dist/web/ ..." >&2
node tools/build-web.mjs

if [[ -n "${MONGODB_URI:-}" ]] || command -v mongod >/dev/null 2>&1; then
  echo "ledger-sync: a MongoDB is at hand (MONGODB_URI or mongod); the embedded FerretDB is not built" >&2
elif ! command -v go >/dev/null 2>&1; then
  echo "ledger-sync: no Go toolchain, so the embedded FerretDB cannot be built; set MONGODB_URI, or install Go and run npm run setup" >&2
else
  bash tools/ferretdb/build.sh
fi
echo "ledger-sync: installed; start the service with: npm start" >&2
