#!/usr/bin/env bash
# The sandbox and grader suites on every PostgreSQL major a template may name: one integration run
# per major, its shared server from hack/tools/postgres.sh (PG_BIN). The major the main run's shared
# server already is (PG_BIN, else Debian's newest) is skipped. `make test` runs this after the
# main run; test/integration/postgres-versions.test.ts checks the enum, the pins and the images.
# Usage: hack/tools/postgres-majors.sh [major…]   (default: every pinned major but the shared one)
set -euo pipefail
cd "$(dirname "$0")/../.."
suites=(
  test/integration/sandbox-sql.test.ts      # the candidate's and grader's roles, limits, refusals
  test/integration/grader.test.ts           # the grade server: answers, caps, timeouts, fuzz
  test/integration/check-grader.test.ts     # named checks on the work schema (catalog queries)
  test/integration/hidden-variants.test.ts  # every SQL exercise on the hidden variants
)
if [ $# -gt 0 ]; then
  majors=("$@")
else
  shared_bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
  shared=$("$shared_bin/postgres" --version 2>/dev/null | sed -n 's/^postgres (PostgreSQL) \([0-9]*\)\..*$/\1/p' || true)
  majors=()
  for m in $(hack/tools/postgres.sh --list | cut -d' ' -f1); do
    if [ "$m" = "$shared" ]; then
      echo "postgres-majors: $m is the main run's shared server: already tested" >&2
    else
      majors+=("$m")
    fi
  done
fi
for m in "${majors[@]}"; do
  bin=$(hack/tools/postgres.sh "$m")
  echo "postgres-majors: the sandbox and grader suites on PostgreSQL $m" >&2
  start=$SECONDS
  PG_BIN=$bin vitest run --project integration "${suites[@]}"
  # Worded so that no CI log reader takes it for a test runner's closing line ("N passed in Ns").
  echo "postgres-majors: the suites pass on PostgreSQL $m ($((SECONDS - start)) s)" >&2
done
