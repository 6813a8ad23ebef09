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
