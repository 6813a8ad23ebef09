#!/usr/bin/env bash
# Times `testbed.sh up` and `down` of a scenario N times (default: default, 5)
# and prints the median and worst of each, and whether any process was left.
#   scripts/bench/testbed.sh [scenario] [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
scenario=${1:-default}
runs=${2:-5}
dir=$(mktemp -d)/bed
swift build --product k8s-cluster-sim >/dev/null 2>&1
ups=()
downs=()
left=0
for _ in $(seq "$runs"); do
  start=$(date +%s%N)
  ./scripts/testbed.sh up --scenario "$scenario" --dir "$dir" 2>/dev/null
  middle=$(date +%s%N)
  pids=$(cat "$dir"/pids/*.pid)
  ./scripts/testbed.sh down --dir "$dir" 2>/dev/null
  end=$(date +%s%N)
  ups+=($(((middle - start) / 1000000)))
  downs+=($(((end - middle) / 1000000)))
  for pid in $pids; do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    if [[ -n $state && $state != Z ]]; then left=$((left + 1)); fi
  done
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %d ms, worst %d ms", a[int((NR+1)/2)], a[NR]}'; }
echo "testbed $scenario, $runs runs"
echo "  up:   $(stats "${ups[@]}")"
echo "  down: $(stats "${downs[@]}")"
echo "  processes left running after down: $left"
