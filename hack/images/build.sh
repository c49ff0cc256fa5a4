#!/usr/bin/env bash
# Builds every container image the end-to-end tier runs, without a container registry:
#   debootstrap → localhost/debian:bookworm → localhost/node:24-slim (the project's pinned Node) →
#   the targets of the project's own Dockerfile (operator, api, gateway, data-api, seeder) through
#   its NODE_IMAGE ARG,
#   plus localhost/pause:3.10 (pause/pause.c), localhost/postgres:<major> for every major
#   hack/tools/postgres.sh pins (the template's version enum), localhost/ferretdb:1.24,
#   localhost/coredns:1.14.7 (the local cluster's DNS, hack/tools/coredns) and localhost/agnhost:2.63
#   (Kubernetes' e2e test binary from the pinned module, hack/tools/agnhost: NetworkPolicy cases).
# Prints the docker-archive tarballs the cluster needs, one path per line on stdout (for
# `ctr -n k8s.io images import`); progress goes to stderr. Cached in
# ${EPREUVE_CACHE:-~/.cache/epreuve}/images, keyed by the content of each image's inputs (a project
# image: the Dockerfile, every package.json and the lockfile, the bundler script, and the sources
# of the workspaces its bundle compiles — see WORKSPACES below): a second run with nothing changed only checks hashes (and reloads podman from the archives if
# its storage was wiped). Needs root, podman, debootstrap, gcc; network: the Debian mirror and
# the npm registry (both through --network=host during builds only).
# Usage: hack/images/build.sh [image…]   (default: all; names as in IMAGES below)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${EPREUVE_CACHE:-$HOME/.cache/epreuve}/images
mkdir -p "$cache"
# One build at a time per cache (make e2e and make up may both ask for the images).
exec 9>"$cache/.lock"
flock 9
# runc and rlimits this host allows (see containers.conf), without touching machine-wide settings.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
TAG=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$root/charts/epreuve/Chart.yaml")
REGISTRY=localhost/epreuve
IMAGES=(pause coredns agnhost postgres ferretdb operator api gateway data-api seeder)

log() { echo "images: $*" >&2; }
hash_files() { (cd "$1" && shift && find "$@" -type f ! -path '*/node_modules/*' ! -name '*.test.ts' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16; }
hash_str() { printf '%s' "$*" | sha256sum | cut -c1-16; }
for tool in podman debootstrap gcc go; do
  command -v "$tool" >/dev/null || { log "missing $tool (hack/install-deps.sh --e2e installs it)"; exit 1; }
done

# ensure <name:tag> <key> <build function…>: the image is in podman with label epreuve.inputs=<key>
# and saved as $cache/<name>-<key>.tar; builds only when neither exists. Sets $archive.
ensure() {
  local ref=$1 key=$2
  shift 2
  archive="$cache/$(basename "${ref%%:*}")-${ref##*:}-$key.tar"
  local have
  have=$(podman image inspect --format '{{index .Labels "epreuve.inputs"}}' "$ref" 2>/dev/null || true)
  if [ "$have" = "$key" ] && [ -s "$archive" ]; then
    log "$ref cached ($key)"
    return
  fi
  if [ "$have" = "$key" ]; then
    log "$ref: saving $archive"
    podman save -q --format docker-archive -o "$archive.tmp" "$ref"
    mv "$archive.tmp" "$archive"
    return
  fi
  if [ -s "$archive" ]; then
    log "$ref: loading $archive"
    podman load -q -i "$archive" >/dev/null
    return
  fi
  local start=$SECONDS
  log "$ref: building ($key)…"
  "$@"
  podman save -q --format docker-archive -o "$archive.tmp" "$ref"
  mv "$archive.tmp" "$archive"
  # Older archives of the same image are dead weight.
  find "$cache" -maxdepth 1 -name "$(basename "${ref%%:*}")-${ref##*:}-*.tar" ! -name "$(basename "$archive")" -delete
  log "$ref built in $((SECONDS - start))s, $(du -h "$archive" | cut -f1) archive"
}

# --- localhost/debian:bookworm: debootstrap minbase from the host's own Debian mirror ----------
mirror=$(sed -n -e 's/^URIs: *\(http[^ ]*\/debian\)\/\{0,1\}$/\1/p' -e 's/^deb  *\(http[^ ]*\/debian\)\/\{0,1\}  *bookworm .*/\1/p' \
  /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
security=$(sed -n 's/^URIs: *\(http[^ ]*\/debian-security\)\/\{0,1\}$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 || true)
security=${security:-http://deb.debian.org/debian-security}
debian_key=$(hash_str "debootstrap minbase bookworm $(dpkg --print-architecture) $mirror $security v2")
build_debian() {
  local rootfs="$cache/debian-rootfs-$debian_key.tar"
  if [ ! -s "$rootfs" ]; then
    local dir
    dir=$(mktemp -d "$cache/debootstrap.XXXXXX")
    log "debootstrap bookworm from $mirror…"
    debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 ||
      { tail -20 "$dir.log" >&2; rm -rf "$dir"; exit 1; }
    # Security updates for what images install later; like debian:*-slim, no documentation.
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
      "$mirror" "$mirror" "$security" >"$dir/etc/apt/sources.list"
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
      'path-include /usr/share/locale/locale.alias' 'path-exclude /usr/share/lintian/*' \
      >"$dir/etc/dpkg/dpkg.cfg.d/slim"
    find "$dir/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/var/cache/apt/archives/*.deb \
      "$dir"/var/lib/apt/lists/* "$dir"/var/log/* "$dir"/tmp/*
    tar -C "$dir" --numeric-owner -cf "$rootfs.tmp" .
    mv "$rootfs.tmp" "$rootfs"
    rm -rf "$dir" "$dir.log"
    find "$cache" -maxdepth 1 -name 'debian-rootfs-*.tar' ! -name "$(basename "$rootfs")" -delete
  fi
  podman import -q --change "LABEL epreuve.inputs=$debian_key" --change 'CMD ["bash"]' \
    "$rootfs" localhost/debian:bookworm >/dev/null
}

# --- localhost/node:24-slim: the pinned Node 24 from node_modules, npm from the host -----------
node_bin=$root/node_modules/node/bin/node
[ -x "$node_bin" ] || { log "no $node_bin: run make deps first"; exit 1; }
npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
node_key=$(hash_str "$debian_key $(sha256sum "$node_bin" | cut -c1-16) $(node -p 'require(process.argv[1]).version' "$npm_dir/package.json") $(hash_files "$here" node)")
build_node() {
  local ctx
  ctx=$(mktemp -d)
  # Debug symbols are half of the binary's 190 MB and nothing in a container reads them.
  strip -o "$ctx/node" "$node_bin"
  cp -a "$npm_dir" "$ctx/npm"
  podman build -q --pull=never --network=none --label "epreuve.inputs=$node_key" \
    -t localhost/node:24-slim -f "$here/node/Dockerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
}

# --- the images the cluster runs ---------------------------------------------------------------
build_pause() {
  local ctx
  ctx=$(mktemp -d)
  gcc -static -Os -Wall -Wextra -Werror -o "$ctx/pause" "$here/pause/pause.c"
  strip "$ctx/pause"
  podman build -q --pull=never --network=none --label "epreuve.inputs=$1" \
    -t localhost/pause:3.10 -f "$here/pause/Dockerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
}

build_coredns() {
  local ctx
  ctx=$(mktemp -d)
  cp "$(cd "$root" && hack/build-go-tool.sh coredns)" "$ctx/coredns"
  podman build -q --pull=never --network=none --label "epreuve.inputs=$1" \
    -t localhost/coredns:1.14.7 -f "$here/coredns/Dockerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
}

build_agnhost() {
  local ctx
  ctx=$(mktemp -d)
  cp "$(cd "$root" && hack/build-go-tool.sh agnhost)" "$ctx/agnhost"
  podman build -q --pull=never --network=none --label "epreuve.inputs=$1" \
    -t localhost/agnhost:2.63 -f "$here/agnhost/Dockerfile" "$ctx" >/dev/null
  rm -rf "$ctx"
}

build_postgres() { # <key> <major>
  local ctx
  ctx=$(mktemp -d)
  cp "$here/postgres/Dockerfile" "$here/postgres/docker-entrypoint.sh" "$ctx/"
  cp -a "$(dirname "$("$root/hack/tools/postgres.sh" "$2")")" "$ctx/postgresql"
  rm -f "$ctx/postgresql/.installed"
  # The standard datasets as data directories, loaded by these very binaries with the seeder's code
  # (postgres/preload.ts, ~13 s and ~100 MB per major): a cold start copies them instead of initdb
  # and loading two standard copies under the sandbox's CPU limit.
  log "localhost/postgres:$2: preloading the standard datasets…"
  "$node_bin" "$here/postgres/preload.ts" "$2" "$ctx/preload" >/dev/null
  podman build -q --pull=never --network=host --label "epreuve.inputs=$1" --build-arg "PG_MAJOR=$2" \
    -t "localhost/postgres:$2" "$ctx" >/dev/null
  rm -rf "$ctx"
}

build_ferretdb() {
  local ctx
  ctx=$(mktemp -d)
  cp "$here/ferretdb/Dockerfile" "$here/ferretdb/docker-entrypoint.sh" "$ctx/"
  # Upstream's cmd/ferretdb panics at start unless build/version/version.txt exists (its release
  # scripts generate it; the module zip lacks it, and the module cache is read-only): build from a
  # copy of the pinned module that has it, through a replace in a scratch copy of the wrapper.
  local src
  src=$(cd "$here/ferretdb" && GOFLAGS=-mod=mod go mod download -json github.com/FerretDB/FerretDB |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { log "cannot download the FerretDB module"; exit 1; }
  mkdir "$ctx/build"
  cp "$here/ferretdb/go.mod" "$here/ferretdb/go.sum" "$here/ferretdb/tools.go" "$ctx/build/"
  cp -r "$src" "$ctx/build/ferretdb-src"
  chmod -R u+w "$ctx/build/ferretdb-src"
  sed -n 's/^require github.com\/FerretDB\/FerretDB \(v[^ ]*\)$/\1/p' "$here/ferretdb/go.mod" \
    >"$ctx/build/ferretdb-src/build/version/version.txt"
  echo docker >"$ctx/build/ferretdb-src/build/version/package.txt"
  (cd "$ctx/build" && go mod edit -replace github.com/FerretDB/FerretDB=./ferretdb-src &&
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -p "${GO_BUILD_P:-2}" -trimpath -ldflags "-s -w" \
      -o "$ctx/ferretdb" github.com/FerretDB/FerretDB/cmd/ferretdb)
  rm -rf "$ctx/build"
  # Not `| grep -q`: under pipefail, grep quitting early can SIGPIPE the writer and fail the check.
  "$ctx/ferretdb" --version | grep '^version: v' >/dev/null || { log "the FerretDB build has no version"; exit 1; }
  # The MongoDB sandboxes' standard datasets, loaded by this very binary with the seeder's code
  # (ferretdb/preload.ts, ~45 s): a cold start copies a file instead of inserting ~95 000 documents.
  log "localhost/ferretdb:1.24: preloading the standard datasets…"
  "$node_bin" "$here/ferretdb/preload.ts" "$ctx/ferretdb" "$ctx/preload" standard >/dev/null
  podman build -q --pull=never --network=none --label "epreuve.inputs=$1" \
    -t localhost/ferretdb:1.24 "$ctx" >/dev/null
  rm -rf "$ctx"
}

# The project's Dockerfile stays registry-agnostic: NODE_IMAGE points it at the local base, and
# this host's npm settings (its CA bundle, for a TLS-inspecting egress) are bind-mounted for the
# build's RUN steps only — they are not part of any layer.
npmrc=$(mktemp)
trap 'rm -f "$npmrc"' EXIT
printf 'cafile=/etc/ssl/host-ca.crt\nfund=false\naudit=false\nupdate-notifier=false\n' >"$npmrc"
build_project() { # <key> <target> <ref>
  (cd "$root" && podman build -q --pull=never --network=host --label "epreuve.inputs=$1" \
    --build-arg NODE_IMAGE=localhost/node:24-slim --target "$2" \
    -v "$npmrc:/usr/local/etc/npmrc:ro" -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro \
    -f Dockerfile -t "$3" . >/dev/null)
}
# The workspaces each target's bundle compiles, i.e. those its entrypoint imports
# (hack/images/dockerfile.test.ts checks this table against the Dockerfile and the imports). Every
# project image shares the dependency and build stages' inputs (bundle.ts among them); its
# sources are its own workspaces', so a change to the gateway rebuilds the gateway image and no
# other.
declare -A WORKSPACES=(
  [operator]="crds kube operator"
  [api]="crds kube sandboxes api"
  [gateway]="crds kube gateway"
  [data-api]="crds sandboxes"
  [seeder]="crds sandboxes"
)
read -r -a all_workspaces <<<"$(node -p 'require(process.argv[1]).workspaces.join(" ")' "$root/package.json")"
deps_key=$(hash_str "$node_key $(hash_files "$root" Dockerfile .dockerignore package.json package-lock.json hack/images/bundle.ts "${all_workspaces[@]/%//package.json}")")
project_key() { # <image>
  local sources=() w
  for w in ${WORKSPACES[$1]}; do sources+=("$w/src"); done
  hash_str "$deps_key $1 $(hash_files "$root" "${sources[@]}")"
}

wanted=("${@:-${IMAGES[@]}}")
needs_node=false
for i in "${wanted[@]}"; do
  case "$i" in
    operator | api | gateway | data-api | seeder) needs_node=true ;;
    pause | coredns | agnhost | postgres | ferretdb) ;;
    *) log "unknown image $i (one of: ${IMAGES[*]})"; exit 2 ;;
  esac
done
ensure localhost/debian:bookworm "$debian_key" build_debian
$needs_node && ensure localhost/node:24-slim "$node_key" build_node

out=()
for i in "${wanted[@]}"; do
  case "$i" in
    pause)
      k=$(hash_str "$(hash_files "$here" pause) $(gcc -dumpfullversion)")
      ensure localhost/pause:3.10 "$k" build_pause "$k" ;;
    coredns)
      k=$(hash_str "$(hash_files "$here" coredns) $(hash_files "$root/hack/tools" coredns)")
      ensure localhost/coredns:1.14.7 "$k" build_coredns "$k" ;;
    agnhost)
      k=$(hash_str "$(hash_files "$here" agnhost) $(hash_files "$root/hack/tools" agnhost)")
      ensure localhost/agnhost:2.63 "$k" build_agnhost "$k" ;;
    postgres) # one image per pinned major, keyed by its package version
      # The preloaded data follows the generator, the DDL, the seeder's loader and the Node that runs them.
      pg_data_key=$(hash_str "$node_key $(hash_files "$root" sandboxes/src/datasets sandboxes/src/seeder/postgres.ts sandboxes/src/seeder/copy.ts crds/src/contracts.ts)")
      while read -r major version; do
        k=$(hash_str "$debian_key $(hash_files "$here" postgres) $version $pg_data_key")
        ensure "localhost/postgres:$major" "$k" build_postgres "$k" "$major"
        out+=("$archive")
      done < <("$root/hack/tools/postgres.sh" --list)
      continue ;;
    ferretdb)
      # The preloaded datasets follow the generator and the seeder's migrations (and the Node that runs them).
      k=$(hash_str "$debian_key $(hash_files "$here" ferretdb) $(go env GOVERSION) $node_key $(hash_files "$root" sandboxes/src/datasets sandboxes/src/seeder/mongo.ts)")
      ensure localhost/ferretdb:1.24 "$k" build_ferretdb "$k" ;;
    operator | api | gateway | data-api | seeder)
      k=$(project_key "$i")
      ensure "$REGISTRY/$i:$TAG" "$k" build_project "$k" "$i" "$REGISTRY/$i:$TAG" ;;
  esac
  out+=("$archive")
done
printf '%s\n' "${out[@]}"
