# Sourced by every script under scripts/bench/: one way to read --smoke and
# to find the binaries a benchmark runs.
#
#   bench_init "$@"     sets SMOKE (0 or 1) and ARGS (the other arguments)
#   bench_binaries P…   sets BIN, the folder holding the products P…:
#     full run: release build, Swift runtime linked statically, built here
#               (as the image ships them), after scripts/setup.sh;
#     --smoke:  the debug build the test command has already made
#               (K8SUP_BENCH_BIN, default .build/debug); nothing is built or
#               installed, so a benchmark that no longer starts fails in
#               seconds instead of measuring nothing.
# shellcheck shell=bash

bench_init() {
  SMOKE=0
  ARGS=()
  local argument
  for argument in "$@"; do
    if [[ $argument == --smoke ]]; then SMOKE=1; else ARGS+=("$argument"); fi
  done
}

bench_binaries() {
  if ((SMOKE)); then
    BIN=${K8SUP_BENCH_BIN:-$PWD/.build/debug}
    local product
    for product in "$@"; do
      [[ -x $BIN/$product ]] || {
        echo "bench --smoke: $BIN/$product is missing; build first (swift build)" >&2
        exit 1
      }
    done
    return
  fi
  ./scripts/setup.sh >/dev/null 2>&1
  local shipped=(-c release --static-swift-stdlib --scratch-path .build-release-static) product log
  log=$(mktemp)
  for product in "$@"; do
    echo "building $product (release, static Swift runtime) ..." >&2
    swift build "${shipped[@]}" --product "$product" >"$log" 2>&1 || {
      cat "$log" >&2
      rm -f "$log"
      exit 1
    }
  done
  rm -f "$log"
  BIN=$(swift build "${shipped[@]}" --show-bin-path)
}

# The median of the numbers given.
bench_median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# bench_serve DIR ARG...: starts `$BIN/k8s-upgrade` with the bed's
# orchestrator arguments ($TESTBED_ORCHESTRATOR_ARGS), no soak and no quiet
# period, then ARG...; its port file and log in DIR. Waits until it answers
# /readyz and sets SERVE_PID and SERVE_URL; exits, printing the log, when it
# dies or is not ready within 20 s.
bench_serve() {
  local dir=$1 serve_args
  shift
  mapfile -t serve_args < <(jq -r '.[]' "$TESTBED_ORCHESTRATOR_ARGS")
  rm -f "$dir/port"
  "$BIN/k8s-upgrade" "${serve_args[@]}" --port-file "$dir/port" --soak 0 --quiet-period 0 "$@" \
    >>"$dir/serve.log" 2>&1 &
  SERVE_PID=$!
  local tries=0
  until [[ -s $dir/port ]] && curl -sf "http://127.0.0.1:$(cat "$dir/port")/readyz" >/dev/null; do
    tries=$((tries + 1))
    if ! kill -0 "$SERVE_PID" 2>/dev/null || ((tries > 400)); then
      cat "$dir/serve.log" >&2
      exit 1
    fi
    sleep 0.05
  done
  # shellcheck disable=SC2034 # for the caller
  SERVE_URL="http://127.0.0.1:$(cat "$dir/port")"
}

# bench_stop_serve: stops the server bench_serve started last (SERVE_PID),
# if it still runs, and waits for it.
bench_stop_serve() {
  if [[ -n ${SERVE_PID:-} ]]; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=""
  fi
}

# bench_cleanup_on_exit DIR: on exit, stops the server (bench_stop_serve),
# takes down the bed in DIR/bed, and removes DIR.
bench_cleanup_on_exit() {
  BENCH_WORK=$1
  trap 'bench_stop_serve; ./scripts/testbed.sh down --dir "$BENCH_WORK/bed" >/dev/null 2>&1 || true; rm -rf "$BENCH_WORK"' EXIT
}

# bench_smoke_cluster FILE: writes the scenario (testbed.sh up --scenario
# FILE) that --smoke's patch jobs run on instead of the default cluster's
# 1 master + 4 workers: the default cluster's workloads (ClusterSim's
# Scenario.standard: the kube-proxy DaemonSet; web, 4 replicas under
# web-pdb, which needs 3 healthy, so its evictions wait for replacements;
# cache, 2 replicas with an emptyDir) on a master and 2 workers, the fewest
# a drain finishes on (the master is tainted, so a worker's pods move to the
# other one); pods Ready 0.2 s after scheduling and a 1 s grace period. Sets
# SMOKE_CLUSTER, the shape to print.
bench_smoke_cluster() {
  cat >"$1" <<'JSON'
{"nodes": [{"name": "master", "roles": ["control-plane"], "kubeletVersion": "1.34.3"},
           {"name": "worker-1", "kubeletVersion": "1.34.3"},
           {"name": "worker-2", "kubeletVersion": "1.34.3"}],
 "workloads": [{"kind": "DaemonSet", "namespace": "kube-system", "name": "kube-proxy", "labels": {"k8s-app": "kube-proxy"}},
               {"kind": "ReplicaSet", "namespace": "default", "name": "web", "replicas": 4, "labels": {"app": "web"}},
               {"kind": "ReplicaSet", "namespace": "default", "name": "cache", "replicas": 2, "labels": {"app": "cache"},
                "emptyDir": true}],
 "budgets": [{"namespace": "default", "name": "web-pdb", "minAvailable": 3, "selector": {"app": "web"}}],
 "readyAfterSeconds": 0.2, "defaultGracePeriodSeconds": 1}
JSON
  # shellcheck disable=SC2034 # for the caller
  SMOKE_CLUSTER="1 master + 2 workers, the default cluster's workloads, pods Ready 0.2 s after scheduling, 1 s grace periods"
}
