#!/usr/bin/env bash
# Times a real patch job (1.34.3 → 1.34.5, or 1.34.3+k3s1 → 1.34.5+k3s1 on
# K3s; soak 0) on the test bed, N runs of each scenario named (default:
# microk8s-ha ha; also microk8s, k3s, default, or a scenario FILE.json,
# its path from the repository's root, named by its file name) and prints
# each one's median job time, from queued to finished, in total and per node.
# Each control plane's restart takes the bed's API away for 20 s, as a real
# one's does; --smoke makes that 1 s.
#   scripts/bench/patch-run.sh [runs] [scenario ...]
#   scripts/bench/patch-run.sh --smoke [runs] [scenario ...]   (default: 1 run of default, made
#     smaller: its workloads on a master and 2 workers, pods Ready 0.2 s after
#     scheduling, 1 s grace periods; the debug build)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/common.sh
bench_init "$@"
set -- "${ARGS[@]+"${ARGS[@]}"}"
runs=${1:-3}
shift || true
scenarios=("$@")
(($# > 0)) || scenarios=(microk8s-ha ha)
outage=20
work=$(mktemp -d)
trap './scripts/testbed.sh down --dir "$work/bed" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
if ((SMOKE)); then
  outage=1
  if (($# == 0)); then
    bench_smoke_cluster "$work/default.json"
    scenarios=("$work/default.json")
    echo "default (--smoke): $SMOKE_CLUSTER"
  fi
  [[ -n ${ARGS[0]:-} ]] || runs=1
fi
bench_binaries k8s-upgrade k8s-cluster-sim
# A scenario's name: a file's without its folder and .json.
label() { if [[ $1 == *.json ]]; then basename "$1" .json; else echo "$1"; fi; }
one() {
  local scenario=$1
  ./scripts/testbed.sh up --scenario "$scenario" --dir "$work/bed" --bin-dir "$BIN" --api-outage "$outage" \
    >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
  # shellcheck source=/dev/null
  source "$work/bed/env"
  bench_serve "$work" --store "$work/jobs.sqlite"
  local serve=$SERVE_PID port token
  port=$(cat "$work/port")
  token=$(cat "$TESTBED_API_TOKEN_FILE")
  # K3s nodes run K3s builds of the release.
  local target=1.34.5
  [[ $TESTBED_DISTRIBUTION != k3s ]] || target=1.34.5+k3s1
  curl -sS --fail-with-body -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -X POST \
    "http://127.0.0.1:$port/execute" -d "{\"target_version\":\"$target\",\"kind\":\"patch\"}" >/dev/null
  local job
  for _ in $(seq 600); do
    job=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/jobs/1?events_limit=1")
    case $(jq -r .state <<<"$job") in succeeded | failed | aborted) break ;; esac
    sleep 0.2
  done
  kill "$serve"
  wait "$serve" || true
  rm -f "$work/port" "$work"/jobs.sqlite*
  [[ $(jq -r .state <<<"$job") == succeeded ]] || { echo "$(label "$scenario"): job $(jq -r .state <<<"$job"): $(jq -r .error <<<"$job")" >&2; exit 1; }
  jq -r '((.finished_at | sub("\\.[0-9]+Z$"; "Z") | fromdate) - (.created_at | sub("\\.[0-9]+Z$"; "Z") | fromdate))' <<<"$job"
  ./scripts/testbed.sh down --dir "$work/bed" >/dev/null 2>&1
}
for scenario in "${scenarios[@]}"; do
  times=()
  for _ in $(seq "$runs"); do times+=("$(one "$scenario")"); done
  if [[ $scenario == *.json ]]; then
    nodes=$(jq '.nodes | length' "$scenario")
  else
    nodes=$(python3 -c 'import sys; sys.path.insert(0, "testbed"); import testbed; c, w = testbed.SCENARIOS[sys.argv[1]]; print(len(c) + len(w))' "$scenario")
  fi
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$(label "$scenario"): patch job (API away ${outage} s per control-plane restart) median ${median} s over $runs runs (${times[*]} s), $nodes nodes, $(awk -v m="$median" -v n="$nodes" 'BEGIN {printf "%.1f", m / n}') s per node"
done
