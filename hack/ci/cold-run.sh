#!/usr/bin/env bash
# Times a whole cold `.ci/run`: a fresh clone of this repository's HEAD, every cache its own (HOME,
# GOCACHE, GOMODCACHE, EPREUVE_CACHE and podman's storage under $COLD_HOME; the machine's own caches
# are not read or written), as on a fresh CI machine. Prints `cold-run: exit <rc> after <s>s` last.
# Usage: hack/ci/cold-run.sh   (needs root, like make e2e; ~45 min on 2 cores: docs/ci.md#cold-builds)
# Delete $COLD_HOME after (as root: podman's storage).
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
H=${COLD_HOME:-/tmp/epreuve-cold-run}
rm -rf "$H"
mkdir -p "$H/containers"
git clone -q "$repo" "$H/main"
# DESIGN.md and the seeds live beside the repository.
[ -e "$repo/../shared" ] && ln -s "$(cd "$repo/../shared" && pwd)" "$H/shared"
export HOME=$H/home GOCACHE=$H/go-build GOMODCACHE=$H/gomod EPREUVE_CACHE=$H/epreuve XDG_CACHE_HOME=$H/home/.cache
mkdir -p "$HOME"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$H/containers/storage" "$H/containers/run" >"$H/storage.conf"
export CONTAINERS_STORAGE_CONF=$H/storage.conf
cd "$H/main"
start=$(date +%s)
CI=true bash .ci/run
rc=$?
echo "cold-run: exit $rc after $(( $(date +%s) - start ))s"
exit $rc
