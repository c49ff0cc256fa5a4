#!/usr/bin/env bash
# Installs schemathesis (the OpenAPI fuzzer of test/integration/openapi-fuzz.test.ts), pinned, from
# PyPI into a virtualenv in the cache outside the repo, keyed by version:
#   ${EPREUVE_CACHE:-~/.cache/epreuve}/venv/schemathesis-<version>/bin/schemathesis
# Needs python3 with venv (Debian: python3-venv, see hack/install-deps.sh).
# Usage: hack/tools/schemathesis.sh   — prints the executable's path on stdout.
set -euo pipefail
version=4.32.5
venv="${EPREUVE_CACHE:-$HOME/.cache/epreuve}/venv/schemathesis-$version"
bin="$venv/bin/schemathesis"
# A venv's scripts name their interpreter by absolute path, so it is built in place; the stamp
# says the install finished (an interrupted one is started over).
if [ -f "$venv/.installed" ] && [ -x "$bin" ]; then
  echo "schemathesis: $version cached in $venv" >&2
else
  echo "schemathesis: installing $version into $venv…" >&2
  start=$(date +%s)
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  # Debian's python3 first: a version manager's shim may point at a Python without venv.
  python=$(command -v /usr/bin/python3 || command -v python3)
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input "schemathesis==$version" >&2
  "$bin" --version >&2
  touch "$venv/.installed"
  echo "schemathesis: installed in $(( $(date +%s) - start ))s" >&2
fi
echo "$bin"
