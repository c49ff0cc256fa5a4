#!/usr/bin/env bash
# Builds a pinned upstream Go tool from its wrapper module in hack/tools/<name>/ (go.mod pins the
# version; tool.env names the package) into a cache outside the repo, keyed by version:
#   ${EPREUVE_CACHE:-~/.cache/epreuve}/tools/<name>/<version>-<wrapper hash>/<binary>
# tool.env sets PACKAGE and BINARY, optionally LDFLAGS, and EXTRA_BINARIES ("<binary>=<package> …":
# more commands of the same module, built into the same directory, e.g. containerd's shim).
# Usage: hack/build-go-tool.sh <name>   — prints the (first) binary's path on stdout.
# EPREUVE_PRUNE=1 (set in .gitlab-ci.yml, whose caches outlive versions): after a build, the tool's
# other <version>-<hash> directories are deleted. Off by default: worktrees of other branches may
# share ~/.cache/epreuve and still need theirs.
set -euo pipefail
name=${1:?usage: hack/build-go-tool.sh <name>}
dir="$(cd "$(dirname "$0")" && pwd)/tools/$name"
[ -f "$dir/tool.env" ] || { echo "build-go-tool: no hack/tools/$name/tool.env" >&2; exit 1; }
EXTRA_BINARIES=""
# shellcheck source=/dev/null
source "$dir/tool.env"
module=$(sed -n 's/^require \([^ ]*\) .*$/\1/p' "$dir/go.mod" | head -1)
version=$(sed -n 's/^require [^ ]* \(v[^ ]*\)$/\1/p' "$dir/go.mod" | head -1)
[ -n "$version" ] || { echo "build-go-tool: cannot read the pinned version of $name from its go.mod" >&2; exit 1; }
# The wrapper's own files are part of the key: changing main.go or go.sum rebuilds. (cat exits 1
# when a wrapper has no go.sum or no .go file at its root: not an error.)
wrapper=$( (cat "$dir"/go.mod "$dir"/go.sum "$dir"/*.go 2>/dev/null || true) | sha256sum | cut -c1-10)
out="${EPREUVE_CACHE:-$HOME/.cache/epreuve}/tools/$name/$version-$wrapper"
mkdir -p "$out"
built=
for target in "$BINARY=$PACKAGE" $EXTRA_BINARIES; do
  bin="$out/${target%%=*}"
  if [ -x "$bin" ]; then
    echo "build-go-tool: ${target%%=*} ($name $version) cached in $out" >&2
    continue
  fi
  echo "build-go-tool: building ${target%%=*} ($module $version)…" >&2
  start=$(date +%s)
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -p "${GO_BUILD_P:-2}" -trimpath -ldflags "-s -w ${LDFLAGS:-}" \
    -o "$bin.tmp" "${target#*=}")
  mv "$bin.tmp" "$bin"
  built=1
  echo "build-go-tool: ${target%%=*} built in $(( $(date +%s) - start ))s" >&2
done
if [ -n "$built" ] && [ "${EPREUVE_PRUNE:-}" = 1 ]; then
  for old in "$(dirname "$out")"/*/; do
    [ "${old%/}" = "$out" ] && continue
    echo "build-go-tool: pruning ${old%/} (EPREUVE_PRUNE=1)" >&2
    rm -rf "${old%/}"
  done
fi
echo "$out/$BINARY"
