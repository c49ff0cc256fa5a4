#!/usr/bin/env bash
# Builds pinned upstream Kubernetes binaries from the Go module proxy (see hack/kube/go.mod) into
# a cache outside the repo, keyed by version: ${EPREUVE_CACHE:-~/.cache/epreuve}/kube/<version>/.
# Usage: hack/build-kube.sh [component…]   (default: control-plane components + kubectl)
# Prints the bin directory on stdout; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/kube"

version=$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' go.mod)
[ -n "$version" ] || { echo "build-kube: cannot read the k8s.io/kubernetes version from hack/kube/go.mod" >&2; exit 1; }
cache=${EPREUVE_CACHE:-$HOME/.cache/epreuve}
bin="$cache/kube/$version/bin"
mkdir -p "$bin"

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(kube-apiserver kube-controller-manager kubectl)

minor=$(echo "$version" | cut -d. -f2)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

missing=()
for c in "${components[@]}"; do
  if [ "$c" = kubectl ]; then probe=(version --client); else probe=(--version); fi
  if [ -x "$bin/$c" ] && "$bin/$c" "${probe[@]}" 2>/dev/null | grep "$version" >/dev/null; then # not -q: SIGPIPE under pipefail
    echo "build-kube: $c $version cached in $bin" >&2
  else
    missing+=("$c")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  # One `go build` for every missing component: the packages they share compile once (Go's build
  # cache would also share them across invocations) and the links of several binaries run in
  # parallel instead of one after the other.
  echo "build-kube: building ${missing[*]} $version (cold: minutes on 2 cores; docs/ci.md#cold-builds)…" >&2
  start=$(date +%s)
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -p "${GO_BUILD_P:-2}" -trimpath -ldflags "$ldflags" \
    -o "$tmp/" "${missing[@]/#/k8s.io/kubernetes/cmd/}"
  for c in "${missing[@]}"; do mv "$tmp/$c" "$bin/$c"; done
  echo "build-kube: ${missing[*]} built in $(( $(date +%s) - start ))s" >&2
fi
echo "$bin"
