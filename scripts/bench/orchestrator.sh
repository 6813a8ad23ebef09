#!/usr/bin/env bash
# Load on the orchestrator's busiest read: GET /jobs/{id} with wrk for 10 s,
# once paced at about 1,000 requests/s and once as fast as it answers.
# Prints throughput, p50/p99 latency and the server's resident memory (now
# and peak). Target: p99 <= 5 ms at 1,000 requests/s, RSS <= 60 MB.
# The server is built as it ships: release, Swift runtime linked statically.
# The job it serves is held at the halt-on-alert gate (Prometheus is
# unreachable on purpose), so its record is live and has events.
#   scripts/bench/orchestrator.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}

./scripts/setup.sh >/dev/null 2>&1
shipped=(-c release --static-swift-stdlib --scratch-path .build-release-static)
swift build "${shipped[@]}" --product k8s-upgrade >/dev/null 2>&1
binary=$(swift build "${shipped[@]}" --show-bin-path)/k8s-upgrade

work=$(mktemp -d)
pid=""
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
head -c 24 /dev/urandom | base64 >"$work/token"
token=$(cat "$work/token")
"$binary" serve --listen 127.0.0.1:0 --port-file "$work/port" --store "$work/jobs.sqlite" \
  --api-token-file "$work/token" --prometheus-url http://127.0.0.1:9 --poll-interval 1 2>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.05; done
url="http://127.0.0.1:$(cat "$work/port")"
curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"target_version":"1.34.5","kind":"patch","dry_run":true}' "$url/execute" >/dev/null
sleep 2
bytes=$(curl -sf -H "Authorization: Bearer $token" "$url/jobs/1" | wc -c)

# wrk's Lua hooks: the token on every request, an optional pause per
# connection (pacing), and the figures printed as one line at the end.
cat >"$work/bench.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
local pause = tonumber(os.getenv("PAUSE_MS") or "0")
if pause > 0 then function delay() return pause end end
function done(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.2f %.2f %.2f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout, summary.requests))
end
LUA

rss() { awk -v f="$1" '$1 == f":" { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
run() {
  local label=$1 pause=$2 connections=$3
  local line
  line=$(PAUSE_MS=$pause wrk -t1 -c"$connections" -d"${seconds}s" -s "$work/bench.lua" "$url/jobs/1" | grep '^RESULT')
  read -r _ rps p50 p99 max errors total <<<"$line"
  printf '%-28s %8s req/s  p50 %6s ms  p99 %6s ms  max %7s ms  errors %s of %s  RSS %s MB\n' \
    "$label" "$rps" "$p50" "$p99" "$max" "$errors" "$total" "$(rss VmRSS)"
}

echo "GET /jobs/1 ($bytes bytes of JSON), ${seconds} s each, wrk -t1, release build with static Swift runtime"
echo "RSS after start and one job: $(rss VmRSS) MB"
run "paced (~1,000 req/s, 5 conn)" 4 5
run "saturated (8 conn)" 0 8
echo "peak RSS (VmHWM): $(rss VmHWM) MB; targets: p99 <= 5 ms at 1,000 req/s, RSS <= 60 MB"
