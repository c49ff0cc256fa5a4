#!/usr/bin/env bash
# GitOps deploy: sets image.tag in argocd/values/<env>.yaml on the default branch, commits it as
# "chore(deploy): …" and pushes with a project access token (GITOPS_TOKEN); Argo CD syncs. The push
# skips CI (-o ci.skip; the workflow rules also ignore such commits). Retries when the branch moved.
# Usage: hack/ci/deploy.sh <dev|staging|prod> <image tag>
set -euo pipefail
usage="usage: hack/ci/deploy.sh <dev|staging|prod> <image tag>"
env=${1:?$usage}
tag=${2:?$usage}
cd "$(dirname "$0")/../.."
file="argocd/values/$env.yaml"
[ -f "$file" ] || { echo "deploy: no $file (environments: $(ls argocd/values | sed 's/\.yaml$//' | xargs))" >&2; exit 1; }
for v in GITOPS_TOKEN CI_SERVER_URL CI_PROJECT_PATH; do
  [ -n "${!v:-}" ] || { echo "deploy: $v is not set (GITOPS_TOKEN: a project access token with write_repository)" >&2; exit 1; }
done
branch=${CI_DEFAULT_BRANCH:-main}
remote="$CI_SERVER_URL/$CI_PROJECT_PATH.git"
export GIT_TERMINAL_PROMPT=0
# The token reaches git through a credential helper reading the environment: never in a URL or a log.
# shellcheck disable=SC2016
g() {
  git -c credential.helper= \
    -c credential.helper='!f() { echo username=oauth2; echo "password=$GITOPS_TOKEN"; }; f' \
    -c user.name="${GITOPS_USER_NAME:-Épreuve CI}" -c user.email="${GITOPS_USER_EMAIL:-epreuve-ci@noreply.invalid}" "$@"
}
for attempt in 1 2 3; do
  g fetch --quiet "$remote" "$branch"
  git checkout --quiet -B "deploy-$env" FETCH_HEAD
  result=$(node hack/ci/bump-image-tag.ts "$file" "$tag")
  if [ "$result" = unchanged ]; then
    echo "deploy: $env already runs $tag"
    exit 0
  fi
  git add "$file"
  g commit --quiet -m "chore(deploy): $env image.tag $tag" -m "Pipeline: ${CI_PIPELINE_URL:-local}"
  if g push --quiet -o ci.skip "$remote" "HEAD:refs/heads/$branch"; then
    echo "deploy: $env → $tag pushed to $branch; Argo CD syncs it"
    exit 0
  fi
  echo "deploy: push rejected (attempt $attempt of 3), retrying on the new $branch" >&2
done
echo "deploy: gave up after 3 attempts" >&2
exit 1
