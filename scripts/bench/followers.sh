#!/usr/bin/env bash
# What followers of a running job cost the service: the same real patch job
# on the bed's default cluster (1 + 4, soak 2 s), once followed by one
# client of GET /jobs/{id}/events?follow=true and once by N (default 200),
# each reading its stream to the end; the service's CPU time and peak RSS
# during each job, side by side, and whether every follower got every event
# once and in order.
#
# Target (issue 23: a few hundred followers cost little): each follower
# beyond the first adds at most 5 ms of the service's CPU over the job and
# 100 KB of its RSS.
#   scripts/bench/followers.sh [followers]        (default 200)
#   scripts/bench/followers.sh --smoke [followers] (default 5; a dry run of
#     a smaller cluster; the debug build)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/common.sh
bench_init "$@"
set -- "${ARGS[@]+"${ARGS[@]}"}"
followers=${1:-200} soak=2 scenario=default dry_run=false label="default cluster (1 + 4), soak 2 s"
work=$(mktemp -d)
pid=""
bench_cleanup_on_exit "$work"
if ((SMOKE)); then
  [[ -n ${ARGS[0]:-} ]] || followers=5
  soak=0 dry_run=true
  bench_smoke_cluster "$work/smoke.json"
  scenario=$work/smoke.json label="dry run, $SMOKE_CLUSTER"
fi
bench_binaries k8s-upgrade k8s-cluster-sim

# One job on a fresh bed, followed by $1 clients: prints RESULT … from followers.py.
one() {
  ./scripts/testbed.sh down --dir "$work/bed" >/dev/null 2>&1 || true
  ./scripts/testbed.sh up --scenario "$scenario" --dir "$work/bed" --bin-dir "$BIN" --api-outage 1 \
    >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
  # shellcheck source=/dev/null
  source "$work/bed/env"
  rm -f "$work"/jobs.sqlite*
  bench_serve "$work" --store "$work/jobs.sqlite" --soak "$soak"
  pid=$SERVE_PID
  local token
  token=$(cat "$TESTBED_API_TOKEN_FILE")
  curl -sS --fail-with-body -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    "$SERVE_URL/execute" -d "{\"target_version\":\"1.34.5\",\"kind\":\"patch\",\"dry_run\":$dry_run}" >/dev/null
  python3 scripts/bench/followers.py "$SERVE_URL" "$token" 1 "$1" "$pid" | grep '^RESULT'
  local state
  state=$(curl -sf -H "Authorization: Bearer $token" "$SERVE_URL/jobs/1?events_limit=1" | jq -r .state)
  [[ $state == succeeded ]] || { echo "the job ended $state" >&2; exit 1; }
  bench_stop_serve
}

read -r _ base_seconds base_cpu base_rss base_events base_complete <<<"$(one 1)"
read -r _ seconds cpu rss events complete <<<"$(one "$followers")"
echo "followers of a running patch job ($label); binaries: $BIN"
printf '  %4d follower:  job %6.1f s  service CPU %6.2f s  peak RSS %6.1f MB  %d events; complete: %d of 1\n' \
  1 "$base_seconds" "$base_cpu" "$(awk -v k="$base_rss" 'BEGIN { print k / 1024 }')" "$base_events" "$base_complete"
printf '  %4d followers: job %6.1f s  service CPU %6.2f s  peak RSS %6.1f MB  %d events; complete: %d of %d\n' \
  "$followers" "$seconds" "$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$events" "$complete" "$followers"
extra=$((followers > 1 ? followers - 1 : 1))
awk -v cpu="$cpu" -v base="$base_cpu" -v rss="$rss" -v base_rss="$base_rss" -v n="$extra" 'BEGIN {
  printf "  each follower beyond the first: %.2f ms of CPU, %.0f KB of RSS (target <= 5 ms, <= 100 KB)\n",
    (cpu - base) * 1000 / n, (rss - base_rss) / n }'
((base_complete == 1 && complete == followers)) || { echo "a follower missed events or the end" >&2; exit 1; }
