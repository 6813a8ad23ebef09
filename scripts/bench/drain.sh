#!/usr/bin/env bash
# Drain: kubectl against the product, on identical simulated nodes.
#
# The cluster: 2 x RUNS drain targets and 3 spare workers that take the
# replacements (1 with --smoke). Every target holds 110 pods (the kubelet's
# default maximum): 2 DaemonSet pods, 18 pods of 6 ReplicaSets each under a
# budget of maxUnavailable 1 (an eviction is refused until the replacement
# of the last one is Ready, 1 s after it is scheduled), and 90 pods of 9
# plain ReplicaSets, 2 of them with an emptyDir; every pod has a 2 s grace
# period.
# The targets are cordoned first, so replacements land on the spares and
# each drain starts from the same state.
#
# Each run times `kubectl drain --ignore-daemonsets --delete-emptydir-data`
# on one target and `k8s-upgrade drain` (the pipeline's drain) on its twin,
# alternating which goes first, checks that both evicted the same set, and
# prints the median wall times and their ratio (target: <= 0.8).
#
# Then one full patch upgrade of the default cluster (1 master + 4 workers,
# 2 s soaks) prints the orchestration overhead: the job's total time minus
# the drain, node-script and soak time of its nodes, in all and per node.
#
# Everything runs as it ships: release build, Swift runtime linked statically.
# It also prints the drain's lower bound (the longest chain of evictions a
# budget serialises, each waiting for its replacement's readiness, then the
# grace period; target: the product within 1.5x of it) and the requests
# each drain sent to the API server (the simulator counts them; target: the
# product no more than kubectl).
#   scripts/bench/drain.sh [runs]   (default 3)
#   scripts/bench/drain.sh --smoke [runs]   (default 1; 11 pods a target and no budget, Ready
#     0.2 s after scheduling, a 1 s grace period, 1 spare; the patch upgrade on a
#     master and 2 workers holding the default cluster's workloads (Ready 0.2 s
#     after scheduling, 1 s grace periods), the API away 1 s, no soak; the debug
#     build, or K8SUP_BENCH_BIN)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/common.sh
bench_init "$@"
set -- "${ARGS[@]+"${ARGS[@]}"}"
runs=${1:-3}
guarded=6 plain=9 plain_replicas=10 ready=1 grace=2 spares=3 outage=20 soak=2 poll=0.5
if ((SMOKE)); then
  (($# > 0)) || runs=1
  guarded=0 plain=3 plain_replicas=3 ready=0.2 grace=1 spares=1 outage=1 soak=0 poll=0.2
fi
pods=$((2 + 3 * guarded + plain * plain_replicas))

work=$(mktemp -d)
bed="$work/bed"
# The bed's orchestrator pod goes first, while the API still answers: its
# k8s-upgrade releases the leader lease as it stops, and with the API gone
# as well it outlasts `testbed.sh down`'s 5 s wait for a SIGKILL.
teardown() {
  local pid state
  if pid=$(cat "$bed/pids/orchestrator-pod.pid" 2>/dev/null) && kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 200); do
      state=$(ps -o stat= -p "$pid") || break
      [[ $state != Z* ]] || break
      sleep 0.05
    done
  fi
  ./scripts/testbed.sh down --dir "$bed" >/dev/null 2>&1 || true
}
trap 'teardown; rm -rf "$work"' EXIT
bench_binaries k8s-upgrade k8s-cluster-sim
bin=$BIN

python3 - "$runs" "$guarded" "$plain" "$plain_replicas" "$ready" "$grace" "$spares" >"$work/scenario.json" <<'PY'
import json, sys
runs, guarded, plain, plain_replicas = map(int, sys.argv[1:5])
ready, grace, spares = float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
targets = [f"drain-{i}" for i in range(1, 2 * runs + 1)]
spares = [f"spare-{i}" for i in range(1, spares + 1)]
nodes = [{"name": "master", "roles": ["control-plane"], "kubeletVersion": "1.34.3"}]
nodes += [{"name": n, "kubeletVersion": "1.34.3"} for n in targets + spares]
workloads = [{"kind": "DaemonSet", "namespace": "kube-system", "name": ds, "labels": {"app": ds}}
             for ds in ("kube-proxy", "node-exporter")]
budgets = []
for node in targets:
    for k in range(guarded):
        name = f"{node}-guarded-{k}"
        workloads.append({"kind": "ReplicaSet", "name": name, "replicas": 3, "nodes": [node], "labels": {"app": name}})
        budgets.append({"name": name, "maxUnavailable": 1, "selector": {"app": name}})
    for k in range(plain):
        name = f"{node}-plain-{k}"
        workloads.append({"kind": "ReplicaSet", "name": name, "replicas": plain_replicas, "nodes": [node],
                          "labels": {"app": name}, "emptyDir": k < 2})
print(json.dumps({"nodes": nodes, "workloads": workloads, "budgets": budgets,
                  "readyAfterSeconds": ready, "defaultGracePeriodSeconds": grace}))
PY

spare_text="$spares spares"
((spares > 1)) || spare_text="$spares spare"
echo "bringing up the drain cluster ($((2 * runs)) targets x $pods pods, $spare_text; binaries: $bin) ..."
./scripts/testbed.sh up --dir "$bed" --bin-dir "$bin" --scenario "$work/scenario.json" >"$work/up.log" 2>&1 ||
  { cat "$work/up.log" >&2; exit 1; }
# shellcheck source=/dev/null
source "$bed/env"
k() { kubectl --cache-dir "$work/kube-cache" --request-timeout 30s "$@"; }
for i in $(seq $((2 * runs))); do k cordon "drain-$i" >/dev/null; done

# The evictable pods of a node, as the workload each belongs to, without the
# node's own prefix: equal lists mean the same evicted set.
evictable() {
  k get pods -A --field-selector "spec.nodeName=$1" -o json | python3 -c '
import json, sys
node = sys.argv[1]
pods = json.load(sys.stdin)["items"]
owners = [(p["metadata"].get("ownerReferences") or [{}])[0] for p in pods]
print(" ".join(sorted(o.get("name", "?").removeprefix(node + "-") for o in owners if o.get("kind") != "DaemonSet")))
' "$1"
}
count_on() { k get pods -A --field-selector "spec.nodeName=$1" --no-headers | wc -l; }

now_ms() { date +%s%3N; }
# Requests the API simulator has served (outside its own /sim/ paths).
server=$(awk '/server:/ {print $2; exit}' "$KUBECONFIG")
requests() {
  curl -sSf --cacert "$(awk '/certificate-authority:/ {print $2; exit}' "$KUBECONFIG")" \
    -H "Authorization: Bearer $(cat "$TESTBED_DIR/token")" "$server/sim/v1/requests" | jq .total
}
# Each prints its wall time in ms and the requests it sent.
time_kubectl() {
  local start before
  before=$(requests)
  start=$(now_ms)
  k drain "$1" --ignore-daemonsets --delete-emptydir-data --timeout 300s >"$work/kubectl-$1.log" 2>&1 ||
    { cat "$work/kubectl-$1.log" >&2; exit 1; }
  echo "$(($(now_ms) - start)) $(($(requests) - before))"
}
time_product() {
  local start before
  before=$(requests)
  start=$(now_ms)
  "$bin/k8s-upgrade" drain "$1" --kubeconfig "$KUBECONFIG" --drain-timeout 300 >"$work/product-$1.log" 2>&1 ||
    { cat "$work/product-$1.log" >&2; exit 1; }
  echo "$(($(now_ms) - start)) $(($(requests) - before))"
}

kubectl_ms=()
product_ms=()
kubectl_requests=()
product_requests=()
printf '\n%-4s %-17s %4s %8s %8s %7s %9s %9s  %s\n' run "kubectl/product" pods kubectl product ratio \
  "requests" "requests" first
for r in $(seq "$runs"); do
  a="drain-$((2 * r - 1))"
  b="drain-$((2 * r))"
  before_a=$(evictable "$a")
  before_b=$(evictable "$b")
  [[ $before_a == "$before_b" ]] || { echo "the twins $a and $b differ before the drain" >&2; exit 1; }
  pods=$(count_on "$a")
  if ((r % 2 == 1)); then
    first=kubectl
    read -r tk rk < <(time_kubectl "$a")
    read -r tp rp < <(time_product "$b")
  else
    first=product
    read -r tp rp < <(time_product "$b")
    read -r tk rk < <(time_kubectl "$a")
  fi
  # Both must have evicted exactly the evictable set and left only the DaemonSet pods.
  for node in "$a" "$b"; do
    left=$(evictable "$node")
    [[ -z $left ]] || { echo "$node still holds evictable pods: $left" >&2; exit 1; }
    [[ $(count_on "$node") -eq 2 ]] || { echo "$node does not hold exactly its 2 DaemonSet pods" >&2; exit 1; }
  done
  kubectl_ms+=("$tk")
  product_ms+=("$tp")
  kubectl_requests+=("$rk")
  product_requests+=("$rp")
  awk -v r="$r" -v n="$a/$b" -v p="$pods" -v k="$tk" -v q="$tp" -v f="$first" -v rk="$rk" -v rp="$rp" \
    'BEGIN { printf "%-4s %-17s %4s %7.2fs %7.2fs %7.2f %9s %9s  %s\n", r, n, p, k / 1000, q / 1000, q / k, rk, rp, f }'
done

mk=$(bench_median "${kubectl_ms[@]}")
mp=$(bench_median "${product_ms[@]}")
evicted=$(grep -o 'drained: [0-9]* pods evicted' "$work/product-drain-2.log" | grep -o '[0-9]*')
printf '\ndrain of %s pods (%s evicted, 2 kept as DaemonSet pods), median of %s runs:\n' "$pods" "$evicted" "$runs"
# The lower bound: the longest chain of evictions a budget serialises. A
# guarded ReplicaSet's 3 pods go one at a time, each waiting for the one
# before's replacement to be Ready, and the last one's grace period ends it;
# a plain pod only has its grace period.
lower=$(awk -v g="$guarded" -v r="$ready" -v s="$grace" 'BEGIN { print (g > 0 ? 2 * r : 0) + s }')
awk -v k="$mk" -v p="$mp" -v l="$lower" -v rk="$(bench_median "${kubectl_requests[@]}")" \
  -v rp="$(bench_median "${product_requests[@]}")" 'BEGIN {
  printf "  kubectl drain      %6.2f s, %5d requests\n  k8s-upgrade drain  %6.2f s, %5d requests\n", k / 1000, rk, p / 1000, rp
  printf "  ratio              %6.2f  (target <= 0.80)\n", p / k
  printf "  lower bound        %6.2f s: the product at %.2fx of it (target <= 1.50), ", l, p / 1000 / l
  printf "with %s the requests of kubectl (target <= 1)\n", (rk > 0 ? sprintf("%.2fx", rp / rk) : "?") }'
./scripts/testbed.sh down --dir "$bed" >/dev/null 2>&1

echo
cluster=() shape="the default cluster (1 + 4"
if ((SMOKE)); then
  bench_smoke_cluster "$work/cluster.json"
  cluster=(--scenario "$work/cluster.json") shape="a smaller cluster ($SMOKE_CLUSTER"
fi
echo "full patch upgrade of $shape, ${soak} s soaks, the API away ${outage} s at the master's restart) ..."
./scripts/testbed.sh up --dir "$bed" --bin-dir "$bin" ${cluster[@]+"${cluster[@]}"} --orchestrator --soak "$soak" \
  --api-outage "$outage" >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
# shellcheck source=/dev/null
source "$bed/env"
token=$(cat "$TESTBED_ORCHESTRATOR_TOKEN_FILE")
curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"target_version":"1.34.5","kind":"patch"}' "$TESTBED_ORCHESTRATOR_URL/execute" >/dev/null
state="" deadline=$((SECONDS + 300))
while ((SECONDS < deadline)); do
  curl -sf -H "Authorization: Bearer $token" "$TESTBED_ORCHESTRATOR_URL/jobs/1" >"$work/job.json"
  state=$(jq -r .state "$work/job.json")
  [[ $state == running || $state == queued ]] || break
  sleep "$poll"
done
[[ $state == succeeded ]] || { echo "the job ended $state: $(jq -r .error "$work/job.json")" >&2; exit 1; }
curl -sf -H "Authorization: Bearer $token" "$TESTBED_ORCHESTRATOR_URL/jobs/1?events_limit=1000" >"$work/job.json"
# The time the API was away while the master's API server restarted (the
# waits "the Kubernetes API to answer …") is the cluster's, not the tool's:
# shown, and left out of the overhead.
python3 - "$work/job.json" <<'PY'
import datetime, json, sys
job = json.load(open(sys.argv[1]))
def seconds(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
away, since = 0.0, None
for event in job["events"]["items"]:
    if event["kind"] == "wait_started" and event["message"].startswith("the Kubernetes API to answer"):
        since = seconds(event["time"])
    elif event["kind"] == "wait_ended" and since is not None and event["message"].startswith("the Kubernetes API to answer"):
        away += seconds(event["time"]) - since
        since = None
result = job["result"]
nodes = result["nodes"]
work = sum(n["drain_seconds"] + n["script_seconds"] + n["soak_seconds"] for n in nodes)
total = result["total_seconds"]
overhead = total - work - away
print(f"  total {total:.1f} s; drain + script + soak {work:.1f} s over {len(nodes)} nodes; the API away {away:.1f} s")
print(f"  orchestration overhead {overhead:.1f} s in all, {overhead / len(nodes):.2f} s per node (target 0.25)")
print("  (pre-flight checks, etcd snapshot, verification waits, post-flight included)")
# Where it goes: each stage's time, the node stages less their nodes' work
# (and the master stage less the API's absence).
stages = {s["name"]: s["duration_seconds"] or 0.0 for s in job["stages"]}
def node_work(roles):
    return sum(n["drain_seconds"] + n["script_seconds"] + n["soak_seconds"] for n in nodes if n["role"] in roles)
workers = [n for n in nodes if n["role"] == "worker"]
parts = {
    "preflight": stages.get("preflight", 0.0), "snapshot (save, copy, restore rehearsal)": stages.get("snapshot", 0.0),
    "containerd + repo": stages.get("containerd", 0.0) + stages.get("repo", 0.0),
    "master stage less its node's work": stages.get("master", 0.0) - node_work({"master", "control-plane"}) - away,
    "workers stage less their work": stages.get("workers", 0.0) - node_work({"worker"}),
    "postflight": stages.get("postflight", 0.0),
}
parts["outside the stages"] = overhead - sum(parts.values())
print("  overhead by part: " + ", ".join(f"{name} {value:.2f} s" for name, value in parts.items())
      + f" ({parts['workers stage less their work'] / max(1, len(workers)):.2f} s per worker)")
PY
