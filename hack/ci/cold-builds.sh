#!/usr/bin/env bash
# Measures the cold builds one by one, in the order CI does them, in caches of their own (HOME,
# GOCACHE, GOMODCACHE, EPREUVE_CACHE and podman's storage under $COLD_HOME; the machine's own caches
# are not read or written): wall, user and sys seconds, peak memory and the load average before and
# after each. Go modules come from the Go module proxy, images from the Debian mirror and npm.
# Usage: hack/ci/cold-builds.sh [step…]   (default: every step; docs/ci.md#cold-builds)
#   steps: kube-cp (apiserver, controller-manager, kubectl), kube-node (scheduler, kubelet, proxy),
#          schemathesis, postgres, images, or a hack/tools name (etcd, helm, jaeger, agnhost…)
# Results: one tab-separated line per step on stdout and appended to $COLD_HOME/results.tsv; the
# builds' own output in $COLD_HOME/steps.log. Delete $COLD_HOME (as root: podman's storage) after.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
H=${COLD_HOME:-/tmp/epreuve-cold}
mkdir -p "$H/containers"
export HOME=$H GOCACHE=$H/go-build GOMODCACHE=$H/gomod EPREUVE_CACHE=$H/epreuve XDG_CACHE_HOME=$H/.cache
export PATH=$repo/node_modules/.bin:$PATH
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$H/containers/storage" "$H/containers/run" >"$H/storage.conf"
export CONTAINERS_STORAGE_CONF=$H/storage.conf
cd "$repo"
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(kube-cp etcd ferretdb helm helm3 kube-score jaeger schemathesis postgres
  kube-node containerd coredns agnhost images)
res=$H/results.tsv
[ -s "$res" ] || printf 'step\twall_s\tuser_s\tsys_s\tmaxrss_kb\texit\tload_before\tload_after\n' >>"$res"
start=$(date +%s)
failed=0
for s in "${steps[@]}"; do
  case $s in
    kube-cp) cmd=(hack/build-kube.sh) ;;
    kube-node) cmd=(hack/build-kube.sh kube-scheduler kubelet kube-proxy) ;;
    schemathesis | postgres) cmd=("hack/tools/$s.sh") ;;
    images) cmd=(hack/images/build.sh) ;;
    *) cmd=(hack/build-go-tool.sh "$s") ;;
  esac
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  rc=0
  /usr/bin/time -o "$H/time" -f '%e\t%U\t%S\t%M' "${cmd[@]}" >/dev/null 2>>"$H/steps.log" || rc=$?
  [ "$rc" -eq 0 ] || failed=1
  printf '%s\t%s\t%s\t%s\t%s\n' "$s" "$(tail -n 1 "$H/time")" "$rc" "$load" "$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$res"
done
echo "cold-builds: ${#steps[@]} steps in $(( $(date +%s) - start ))s wall; results in $res" >&2
exit "$failed"
