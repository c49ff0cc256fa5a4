#!/usr/bin/env bash
# Installs the system packages Épreuve's build and tests need, when they are missing.
# Debian bookworm; needs root (or sudo). Idempotent: a second run only checks.
set -euo pipefail
packages=(
  postgresql      # the sandbox and grader tests' database server
  chromium        # browser tests of the candidate and staff pages (driven by playwright-core)
  prometheus      # promtool checks the chart's rules and dashboards; the monitoring test scrapes with it
  openssl         # per-run certificates (hack/pki.sh)
  iptables        # the NetworkPolicy enforcer's tests (in a private network namespace)
  iproute2        # network namespaces for those tests
  python3         # tiny TCP peers inside those namespaces
  python3-venv    # the virtualenv of schemathesis, the API's OpenAPI fuzzer (hack/tools/schemathesis.sh)
  curl            # the sandbox gateway tests (a candidate's HTTPS client)
  ca-certificates
  git
  make
  rsync           # gitlab-ci-local (`make ci-lint`) copies the project with it
)
# Only the end-to-end tier (`hack/install-deps.sh --e2e`): its single-node cluster and images.
e2e_packages=(
  podman debootstrap runc   # images built without a registry (hack/images); runc: crun refuses cgroup v1 hybrid
  gcc libc6-dev             # the static pause binary (hack/images/pause)
  containernetworking-plugins conntrack   # the single-node cluster (hack/cluster/cluster.ts)
)
# etcd and containerd are not Debian's (3.4, 1.6): hack/build-go-tool.sh builds newer ones from the
# Go module proxy (`make kube-binaries`, `make node-binaries`).
[ "${1:-}" = --e2e ] && packages+=("${e2e_packages[@]}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Go is not installed from Debian: bookworm's golang-go is 1.19, which cannot read the wrapper
# modules' go lines (the README asks for the newest of them). Say so instead of failing later.
need_go=$(sed -n 's/^go //p' "$(dirname "$0")"/kube/go.mod "$(dirname "$0")"/tools/*/go.mod | sort -V | tail -1)
have_go=$(go env GOVERSION 2>/dev/null | sed 's/^go//' || true)
if [ -z "$have_go" ] || [ "$(printf '%s\n' "$need_go" "$have_go" | sort -V | head -1)" != "$need_go" ]; then
  echo "install-deps: Go >= $need_go is needed (the newest go line of hack/kube and hack/tools/*/go.mod), found ${have_go:-no go on PATH}; Debian bookworm's golang-go (1.19) is too old: install Go from https://go.dev/dl/ or use the golang:$need_go image" >&2
  exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's prometheus enables a system Prometheus on port 9090; tests start their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
  $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
