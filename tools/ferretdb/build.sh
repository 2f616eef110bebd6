#!/usr/bin/env bash
# Builds the embedded FerretDB v1 server into .bin/ (ignored by git). A no-op when the binary is
# already newer than its sources, so start-up and CI can call it every time.
#
# FerretDB comes from the Go module proxy, with one patch of ours applied at build time
# (sqlite-id-index.patch: `_id` lookups use the `_id` index instead of scanning). The module
# cache is read-only, so the source is copied into .bin/ferretdb-build, patched there, and our
# main package is built against that copy through a `replace` in a scratch go.mod.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/.bin/ferretdb-embedded"
patchfile="$here/sqlite-id-index.patch"

if [[ -x "$bin" && "$bin" -nt "$here/main.go" && "$bin" -nt "$here/go.sum" && "$bin" -nt "$patchfile" && "$bin" -nt "$here/build.sh" ]]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: the Go toolchain is needed to build the embedded FerretDB (or set MONGODB_URI)" >&2
  exit 1
fi
echo "building embedded FerretDB v1.24.2 (first run only, about 2 minutes)..." >&2
work="$root/.bin/ferretdb-build"
rm -rf "$work"
mkdir -p "$work/cmd"
cp "$here/main.go" "$here/go.mod" "$here/go.sum" "$work/cmd/"
cd "$work/cmd"
module="github.com/FerretDB/FerretDB"
version="$(go list -m -f '{{.Version}}' "$module")"
src="$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$src" || ! -d "$src" ]]; then
  echo "build.sh: could not download $module@$version" >&2
  exit 1
fi
cp -R "$src" "$work/ferretdb"
chmod -R u+w "$work/ferretdb"
patch --quiet --forward -p1 -d "$work/ferretdb" < "$patchfile"
go mod edit -replace "$module=../ferretdb"
# FerretDB's pure-Go SQLite needs no C compiler.
CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" .
mv "$bin.tmp" "$bin"
rm -rf "$work"
echo "built $bin" >&2
