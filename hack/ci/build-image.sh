#!/usr/bin/env bash
# Builds one of the project's images rootless with buildah (chroot isolation, vfs storage: no
# privileges) and pushes it to the GitLab registry as $CI_REGISTRY_IMAGE/<name>:<short sha>, plus
# :<git tag> on a tag pipeline. The image is the stage <name> of the root Dockerfile (operator, api,
# gateway, data-api, seeder); a name that is not one of its stages is refused, never built as the
# last stage. Layers are cached in $CI_REGISTRY_IMAGE/cache.
# Usage: hack/ci/build-image.sh <name> [Dockerfile]   (default: Dockerfile, at the repository root)
set -euo pipefail
usage="usage: hack/ci/build-image.sh <name> [Dockerfile]"
name=${1:?$usage}
dockerfile=${2:-Dockerfile}
[[ $name =~ ^[a-z0-9][a-z0-9-]*$ ]] || { echo "build-image: \"$name\" is not an image name" >&2; exit 1; }
[ -f "$dockerfile" ] || { echo "build-image: no Dockerfile at $dockerfile" >&2; exit 1; }
grep -qiE "^FROM[[:space:]].*[[:space:]]AS[[:space:]]+$name[[:space:]]*\$" "$dockerfile" ||
  { echo "build-image: $dockerfile has no stage named $name" >&2; exit 1; }
for v in CI_REGISTRY CI_REGISTRY_IMAGE CI_REGISTRY_USER CI_REGISTRY_PASSWORD CI_COMMIT_SHORT_SHA NODE_BASE_IMAGE; do
  [ -n "${!v:-}" ] || { echo "build-image: $v is not set (GitLab sets the CI_* ones; NODE_BASE_IMAGE is in .gitlab-ci.yml)" >&2; exit 1; }
done
image="$CI_REGISTRY_IMAGE/$name"
tags=("$CI_COMMIT_SHORT_SHA")
[ -n "${CI_COMMIT_TAG:-}" ] && tags+=("$CI_COMMIT_TAG")

# The password goes through stdin, never the command line.
printf '%s' "$CI_REGISTRY_PASSWORD" | buildah login --username "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"
buildah bud --isolation "${BUILDAH_ISOLATION:-chroot}" --layers \
  --cache-from "$CI_REGISTRY_IMAGE/cache" --cache-to "$CI_REGISTRY_IMAGE/cache" \
  --build-arg "NODE_IMAGE=$NODE_BASE_IMAGE" --target "$name" \
  --label "org.opencontainers.image.revision=${CI_COMMIT_SHA:-}" \
  --label "org.opencontainers.image.source=${CI_PROJECT_URL:-}" \
  -f "$dockerfile" -t "$image:${tags[0]}" .
for t in "${tags[@]}"; do
  [ "$t" = "${tags[0]}" ] || buildah tag "$image:${tags[0]}" "$image:$t"
  buildah push "$image:$t" "docker://$image:$t"
  echo "build-image: pushed $image:$t"
done
