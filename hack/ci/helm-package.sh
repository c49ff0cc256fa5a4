#!/usr/bin/env bash
# Packages the chart for a release tag vX.Y.Z (chart version X.Y.Z, appVersion vX.Y.Z: the chart's
# default image tag is the release's image tag) and, given an OCI destination, pushes it there with
# the pinned helm (hack/tools/helm). Without a destination it only packages (local use).
# Usage: hack/ci/helm-package.sh <vX.Y.Z> [oci://<registry>/<path>]   — prints the .tgz path
set -euo pipefail
tag=${1:?usage: hack/ci/helm-package.sh <vX.Y.Z> [oci://<registry>/<path>]}
dest=${2:-}
version=${tag#v}
if ! [[ $tag =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]]; then
  echo "helm-package: \"$tag\" is not a release tag (vX.Y.Z)" >&2
  exit 1
fi
cd "$(dirname "$0")/../.."
helm=$(hack/build-go-tool.sh helm)
out=${HELM_PACKAGE_DIR:-.cache/charts}
mkdir -p "$out"
"$helm" package charts/epreuve --version "$version" --app-version "$tag" -d "$out" >&2
pkg="$out/epreuve-$version.tgz"
if [ -n "$dest" ]; then
  for v in CI_REGISTRY CI_REGISTRY_USER CI_REGISTRY_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "helm-package: $v is not set; cannot push to $dest" >&2; exit 1; }
  done
  printf '%s' "$CI_REGISTRY_PASSWORD" | "$helm" registry login --username "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY" >&2
  "$helm" push "$pkg" "$dest" >&2
fi
echo "$pkg"
