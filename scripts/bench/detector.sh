#!/usr/bin/env bash
# Runs k8s-version-check against the test bed N times, and the same reads
# as a plain shell pipeline (kubectl get nodes -o json | jq, ssh master
# apt-cache madison kubeadm, curl -I the next minor, curl the Pushgateway)
# as the reference. Prints median wall time and peak RSS of each.
# Target: the detector at most half the reference's time, under 25 MB.
# The detector is built as it ships: release, Swift runtime linked statically.
#   scripts/bench/detector.sh [runs]            (default 10)
#   scripts/bench/detector.sh --smoke [runs]    (default 1; the debug build, or K8SUP_BENCH_BIN)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/common.sh
bench_init "$@"
set -- "${ARGS[@]+"${ARGS[@]}"}"
runs=${1:-10}
((SMOKE == 0 || $# > 0)) || runs=1
bench_binaries k8s-version-check k8s-cluster-sim

work=$(mktemp -d)
bed=$work/bed
trap './scripts/testbed.sh down --dir "$bed" 2>/dev/null; rm -rf "$work"' EXIT
./scripts/testbed.sh up --dir "$bed" --bin-dir "$BIN" >"$work/bed.log" 2>&1 || {
  cat "$work/bed.log" >&2
  exit 1
}
# shellcheck source=/dev/null
source "$bed/env"
master_port=${TESTBED_SSH_PORTS#*master=}
master_port=${master_port%% *}

detector=("$BIN/k8s-version-check" --kubeconfig "$KUBECONFIG" --master-address "127.0.0.1:$master_port"
  --ssh-user "$TESTBED_SSH_USER" --ssh-key-file "$TESTBED_SSH_KEY" --known-hosts-file "$TESTBED_KNOWN_HOSTS"
  --repo-base "$TESTBED_REPO_BASE" --pushgateway-url "$TESTBED_PUSHGATEWAY_URL")

cat >"$work/reference.sh" <<REFERENCE
set -euo pipefail
kubectl --kubeconfig "$KUBECONFIG" --cache-dir "$work/kube-cache" get nodes -o json \
  | jq -r '.items[].status.nodeInfo.kubeletVersion' | sort -u >/dev/null
kubectl --kubeconfig "$KUBECONFIG" --cache-dir "$work/kube-cache" version -o json | jq -r .serverVersion.gitVersion >/dev/null
ssh -i "$TESTBED_SSH_KEY" -o UserKnownHostsFile="$TESTBED_KNOWN_HOSTS" -o StrictHostKeyChecking=yes -o LogLevel=ERROR \
  -p "$master_port" "$TESTBED_SSH_USER@127.0.0.1" apt-cache madison kubeadm >/dev/null
curl -sS -o /dev/null -w '%{http_code}' -I "$TESTBED_REPO_BASE/v1.35/deb/Release" >/dev/null
curl -sS "$TESTBED_REPO_BASE/v1.35/deb/Packages" | awk '/^Package: kubeadm/{p=1} p && /^Version:/{print \$2; p=0}' | sort -V | tail -n 1 >/dev/null
printf 'k8s_upgrade_available{kind="patch",running="1.34.3",target="1.34.5"} 1\n' \
  | curl -sS --data-binary @- -X PUT "$TESTBED_PUSHGATEWAY_URL/metrics/job/bench-reference" >/dev/null
REFERENCE

measure() { # name, command...: prints "wall_ms rss_kb" per run into $work/name
  local name=$1
  shift
  # A warm-up (kubectl's discovery cache, the page cache), which must succeed.
  "$@" >"$work/$name.log" 2>&1 || { echo "$name failed:" >&2; cat "$work/$name.log" >&2; exit 1; }
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>&1
    awk '{printf "%d %d\n", $1 * 1000, $2}' "$work/time" >>"$work/$name"
  done
}
measure detector "${detector[@]}"
measure reference bash "$work/reference.sh"

summary() { # file: median wall ms, peak RSS MB
  sort -n "$1" | awk '{w[NR]=$1; if ($2 > m) m = $2} END {printf "%d %.1f\n", w[int((NR+1)/2)], m/1024}'
}
read -r d_wall d_rss < <(summary "$work/detector")
read -r r_wall r_rss < <(summary "$work/reference")
echo "detector vs shell pipeline, $runs runs each, against the test bed; binaries: $BIN"
printf '  %-22s median %5d ms   peak RSS %6.1f MB\n' "k8s-version-check" "$d_wall" "$d_rss"
printf '  %-22s median %5d ms   peak RSS %6.1f MB\n' "shell pipeline" "$r_wall" "$r_rss"
awk -v d="$d_wall" -v r="$r_wall" 'BEGIN {printf "  ratio %.2f (target <= 0.50)\n", d / r}'
