#!/usr/bin/env bash
# Times `testbed.sh up` and `down` of a scenario N times (default: default, 5)
# and prints the median and worst of each, and whether any process was left.
#   scripts/bench/testbed.sh [scenario] [runs]
#   scripts/bench/testbed.sh --smoke [scenario] [runs]   (default 1 run; the debug build, or K8SUP_BENCH_BIN)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/common.sh
bench_init "$@"
set -- "${ARGS[@]+"${ARGS[@]}"}"
scenario=${1:-default}
runs=${2:-5}
((SMOKE == 0 || $# > 1)) || runs=1
bench_binaries k8s-cluster-sim
work=$(mktemp -d)
dir=$work/bed
trap './scripts/testbed.sh down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
ups=()
downs=()
left=0
for _ in $(seq "$runs"); do
  start=$(date +%s%N)
  ./scripts/testbed.sh up --scenario "$scenario" --dir "$dir" --bin-dir "$BIN" >"$work/up.log" 2>&1 ||
    { cat "$work/up.log" >&2; exit 1; }
  middle=$(date +%s%N)
  pids=$(cat "$dir"/pids/*.pid)
  ./scripts/testbed.sh down --dir "$dir" >"$work/down.log" 2>&1 || { cat "$work/down.log" >&2; exit 1; }
  end=$(date +%s%N)
  ups+=($(((middle - start) / 1000000)))
  downs+=($(((end - middle) / 1000000)))
  for pid in $pids; do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    if [[ -n $state && $state != Z ]]; then left=$((left + 1)); fi
  done
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %d ms, worst %d ms", a[int((NR+1)/2)], a[NR]}'; }
echo "testbed $scenario, $runs runs; binaries: $BIN"
echo "  up:   $(stats "${ups[@]}")"
echo "  down: $(stats "${downs[@]}")"
echo "  processes left running after down: $left"
((left == 0)) || { echo "testbed down left $left processes running" >&2; exit 1; }
