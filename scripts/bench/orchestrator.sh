#!/usr/bin/env bash
# The orchestrator's read path under load: GET /jobs/{id} and GET /jobs with
# wrk, once paced at about 1,000 requests/s and once as fast as the server
# answers, then RSS after a long saturated run against its idle value.
#
# The store is a real one: a dry run of the bed's default cluster (1 + 4)
# run by `serve` configured for the bed, its job then given 1,000 events in
# all, and 49 more jobs like it, so /jobs lists 50 records and /jobs/1
# answers its first 100 events (the default page).
#
# Targets (issue 22): /jobs/{id} and /jobs p99 <= 2 ms at 1,000 req/s and
# >= 5,000 req/s saturated; RSS after the long run within 10 % of idle.
#   scripts/bench/orchestrator.sh [seconds] [memory-seconds]   (default 10 60)
#   scripts/bench/orchestrator.sh --smoke [seconds] [memory-seconds]
#     (1 s each by default; the debug build, or the binaries in K8SUP_BENCH_BIN)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/common.sh
bench_init "$@"
set -- "${ARGS[@]+"${ARGS[@]}"}"
seconds=${1:-10} memory_seconds=${2:-60}
((SMOKE == 0 || $# > 0)) || seconds=1 memory_seconds=1
bench_binaries k8s-upgrade k8s-cluster-sim

work=$(mktemp -d)
pid=""
bench_cleanup_on_exit "$work"

./scripts/testbed.sh up --dir "$work/bed" --bin-dir "$BIN" >"$work/bed.log" 2>&1 || {
  cat "$work/bed.log" >&2
  exit 1
}
# shellcheck source=/dev/null
source "$work/bed/env"
token=$(cat "$TESTBED_API_TOKEN_FILE")
store=$work/jobs.sqlite

serve() {
  bench_serve "$work" --store "$store"
  pid=$SERVE_PID url=$SERVE_URL
}
api() { curl -sS --fail-with-body -H "Authorization: Bearer $token" "$@"; }

# 1. A real job: a dry run of the whole cluster.
serve
api -H 'Content-Type: application/json' -d '{"target_version":"1.34.5","kind":"patch","dry_run":true}' \
  "$url/execute" >/dev/null
state=""
for _ in $(seq 600); do
  state=$(api "$url/jobs/1?events_limit=1" | jq -r .state)
  [[ $state == queued || $state == running ]] || break
  sleep 0.1
done
[[ $state == succeeded ]] || { echo "the dry run ended $state" >&2; api "$url/jobs/1" >&2; exit 1; }
bench_stop_serve

# 2. The store grown to its size under test: 1,000 events for job 1, 49 copies of it.
sqlite3 "$store" <<'SQL'
WITH RECURSIVE n(seq) AS (SELECT (SELECT event_count FROM jobs WHERE id = 1) + 1 UNION ALL SELECT seq + 1 FROM n WHERE seq < 1000)
INSERT INTO events (job_id, seq, time, kind, stage, node, message, deadline)
  SELECT 1, seq, (SELECT updated_at FROM jobs WHERE id = 1), 'info', 'workers', 'worker-' || (seq % 4 + 1),
         'worker-' || (seq % 4 + 1) || ' is Ready with kubelet at 1.34.5 after its kubelet restart (check ' || seq || ')', NULL
  FROM n;
UPDATE jobs SET event_count = 1000 WHERE id = 1;
WITH RECURSIVE c(id) AS (SELECT 2 UNION ALL SELECT id + 1 FROM c WHERE id < 50)
INSERT INTO jobs (id, request, state, created_at, started_at, finished_at, updated_at, progress, result, event_count)
  SELECT c.id, request, state, created_at, started_at, finished_at, updated_at, progress, result, event_count
  FROM c, jobs WHERE jobs.id = 1;
INSERT INTO events SELECT j.id, e.seq, e.time, e.kind, e.stage, e.node, e.message, e.deadline
  FROM events e, jobs j WHERE e.job_id = 1 AND j.id > 1;
INSERT INTO job_nodes SELECT j.id, n.idx, n.progress, n.revision FROM job_nodes n, jobs j WHERE n.job_id = 1 AND j.id > 1;
SQL
serve
job_bytes=$(api "$url/jobs/1" | wc -c)
list_bytes=$(api "$url/jobs" | wc -c)
[[ $(api "$url/jobs/1" | jq -r '"\(.events.items | length) \(.events.total)"') == "100 1000" ]] || { echo "GET /jobs/1 did not answer 100 events" >&2; exit 1; }
[[ $(api "$url/jobs" | jq '.jobs | length') == 50 ]] || { echo "GET /jobs did not list 50 jobs" >&2; exit 1; }

# wrk's Lua hooks: the token on every request, an optional pause per
# connection (pacing), and the figures printed as one line at the end.
cat >"$work/bench.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
local pause = tonumber(os.getenv("PAUSE_MS") or "0")
if pause > 0 then function delay() return pause end end
function done(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.2f %.2f %.2f %d %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout, summary.requests,
    summary.errors.status))
end
LUA

rss() { awk -v f="$1" '$1 == f":" { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
failures=0
run() { # label, path, pause ms, connections, duration
  local label=$1 path=$2 pause=$3 connections=$4 duration=${5:-$seconds} line
  line=$(PAUSE_MS=$pause wrk -t1 -c"$connections" -d"${duration}s" -s "$work/bench.lua" "$url$path" | grep '^RESULT')
  read -r _ rps p50 p99 max errors total _ <<<"$line"
  printf '  %-34s %7s req/s  p50 %6s ms  p99 %6s ms  max %7s ms  errors %s of %s\n' \
    "$label" "$rps" "$p50" "$p99" "$max" "$errors" "$total"
  ((errors == 0)) || failures=$((failures + 1))
  last_rps=$rps last_p99=$p99
}

# One warm-up second, then the idle figure.
run "warm-up" /jobs/1 0 2 1 >/dev/null
sleep 1
idle=$(rss VmRSS)
echo "GET /jobs/1 ($job_bytes bytes: a 1 + 4 dry run's record, 100 of its 1,000 events)" \
  "and GET /jobs ($list_bytes bytes: 50 jobs); wrk -t1, ${seconds} s each; binaries: $BIN"
run "/jobs/1 paced (~1,000 req/s, 5 conn)" /jobs/1 4 5
job_paced_p99=$last_p99
run "/jobs/1 saturated (8 conn)" /jobs/1 0 8
job_saturated=$last_rps
run "/jobs paced (~1,000 req/s, 5 conn)" /jobs 4 5
list_paced_p99=$last_p99
run "/jobs saturated (8 conn)" /jobs 0 8
list_saturated=$last_rps
run "/jobs/1 saturated, ${memory_seconds} s (memory)" /jobs/1 0 8 "$memory_seconds"
after=$(rss VmRSS)
echo "RSS idle $idle MB, after the ${memory_seconds} s run $after MB ($(awk -v a="$after" -v i="$idle" \
  'BEGIN {printf "%+.1f %%", (a / i - 1) * 100}')), peak (VmHWM) $(rss VmHWM) MB"
echo "targets: p99 <= 2 ms paced (/jobs/1 $job_paced_p99 ms, /jobs $list_paced_p99 ms);" \
  ">= 5,000 req/s saturated (/jobs/1 $job_saturated, /jobs $list_saturated); RSS after within 10 % of idle"
((failures == 0)) || { echo "requests failed in $failures runs; see above" >&2; exit 1; }
