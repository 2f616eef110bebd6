#!/usr/bin/env bash
# Builds the embedded FerretDB v1 server into .bin/ (ignored by git). A no-op when the binary is
# already newer than its sources, so start-up and CI can call it every time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/.bin/ferretdb-embedded"

if [[ -x "$bin" && "$bin" -nt "$here/main.go" && "$bin" -nt "$here/go.sum" ]]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: the Go toolchain is needed to build the embedded FerretDB (or set MONGODB_URI)" >&2
  exit 1
fi
mkdir -p "$root/.bin"
echo "building embedded FerretDB v1.24.2 (first run only, about 2 minutes)..." >&2
cd "$here"
# FerretDB's pure-Go SQLite needs no C compiler.
CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" .
mv "$bin.tmp" "$bin"
echo "built $bin" >&2
