#!/usr/bin/env bash
# Times the restore rehearsal of an etcd snapshot and measures its memory,
# with the commands RestoreRehearsal issues (restore, a one-member etcd on
# loopback, the key count, the namespaces' sample), for snapshots of etcd
# databases holding the MB of values given (default: 1, about the bed's, and 500).
# Each database is generated in a local etcd: namespaces, then values of
# 1 MB (the bed's packages install etcd and etcdctl).
#   scripts/bench/rehearsal.sh [MB ...]
#   scripts/bench/rehearsal.sh --smoke [MB ...]   (default: 1 and 8)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/common.sh
bench_init "$@"
set -- "${ARGS[@]+"${ARGS[@]}"}"
sizes=("$@")
(($# > 0)) || sizes=(1 500)
((SMOKE == 0 || $# > 0)) || sizes=(1 8)
restorer=etcdctl
if command -v etcdutl >/dev/null; then restorer=etcdutl; fi
work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# As the rehearsal asks: etcdctl once etcd listens (its first dial to a
# port nobody listens on yet backs off for a second), every 20 ms.
healthy() {
  local url=$1 deadline=$((SECONDS + 60))
  until (exec 3<>"/dev/tcp/127.0.0.1/${url##*:}") 2>/dev/null &&
    etcdctl --endpoints "$url" --command-timeout 2s endpoint health >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "etcd at $url did not become healthy" >&2; exit 1; }
    sleep 0.02
  done
}
now() { date +%s.%N; }
seconds() { python3 -c "print(f'{$2 - $1:.2f}')"; }

echo "restore rehearsal ($restorer snapshot restore, etcd $(etcd --version | awk 'NR == 1 { print $3 }'))"
for mb in "${sizes[@]}"; do
  dir="$work/$mb"
  mkdir -p "$dir"
  # The source cluster: the namespaces, then 1 MB values up to the size.
  client="http://127.0.0.1:$(port)" peer="http://127.0.0.1:$(port)"
  etcd --name source --data-dir "$dir/source" --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "source=$peer" \
    --quota-backend-bytes $(((mb + 256) * 1024 * 1024)) --log-level error >"$dir/source.log" 2>&1 &
  pids+=($!)
  source_pid=$!
  healthy "$client"
  for namespace in default kube-node-lease kube-public kube-system; do
    etcdctl --endpoints "$client" put "/registry/namespaces/$namespace" "{\"metadata\":{\"name\":\"$namespace\"}}" >/dev/null
  done
  head -c 786432 /dev/urandom >"$dir/random"
  base64 -w 0 "$dir/random" >"$dir/value" # 1 MiB of text
  for ((i = 0; i < mb; i++)); do
    etcdctl --endpoints "$client" put "/registry/configmaps/bench/value-$i" <"$dir/value" >/dev/null
  done
  etcdctl --endpoints "$client" snapshot save "$dir/snapshot.db" >/dev/null 2>&1
  kill "$source_pid"
  wait "$source_pid" 2>/dev/null || true
  bytes=$(stat -c %s "$dir/snapshot.db")

  # The rehearsal, step by step.
  client="http://127.0.0.1:$(port)" peer="http://127.0.0.1:$(port)"
  start=$(now)
  "$restorer" snapshot restore "$dir/snapshot.db" --data-dir "$dir/data" --name rehearsal \
    --initial-cluster "rehearsal=$peer" --initial-advertise-peer-urls "$peer" >/dev/null 2>&1
  restored=$(now)
  etcd --name rehearsal --data-dir "$dir/data" --listen-client-urls "$client" --advertise-client-urls "$client" \
    --heartbeat-interval 10 --election-timeout 100 \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "rehearsal=$peer" \
    --log-level warn >"$dir/rehearsal.log" 2>&1 &
  pids+=($!)
  rehearsal_pid=$!
  healthy "$client"
  up=$(now)
  keys=$(etcdctl --endpoints "$client" get "" --prefix --keys-only --limit 1 -w json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])')
  etcdctl --endpoints "$client" get /registry/namespaces/ --prefix --keys-only --limit 3 >/dev/null
  counted=$(now)
  rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$rehearsal_pid/status")
  kill "$rehearsal_pid"
  wait "$rehearsal_pid" 2>/dev/null || true
  printf '%5d MB of values (snapshot %d bytes, %d keys): restore %s s, etcd healthy %s s, count and sample %s s, total %s s; etcd peak RSS %d MB\n' \
    "$mb" "$bytes" "$keys" "$(seconds "$start" "$restored")" "$(seconds "$restored" "$up")" \
    "$(seconds "$up" "$counted")" "$(seconds "$start" "$counted")" "$((rss / 1024))"
  rm -rf "$dir"
done
