#!/usr/bin/env bash
# Shared by the test bed's fake node tools. Each simulated node has a root
# folder ($K8S_NODE_ROOT, set by its sshd) holding its package state, its
# apt source line and how to reach the API simulator (etc/testbed-node.env).
set -euo pipefail

: "${K8S_NODE_ROOT:?K8S_NODE_ROOT is not set: this tool only runs on a test-bed node}"
# shellcheck source=/dev/null
source "$K8S_NODE_ROOT/etc/testbed-node.env"

STATE="$K8S_NODE_ROOT/var/lib/testbed"
SOURCES="$K8S_NODE_ROOT/etc/apt/sources.list.d/kubernetes.list"
LISTS="$STATE/lists"
mkdir -p "$STATE/installed" "$STATE/holds" "$LISTS"

die() {
  local code=$1
  shift
  printf '%s\n' "$@" >&2
  exit "$code"
}

# A test can make a tool kill the script that called it, as a dropped
# session, a killed orchestrator or a power cut would: $STATE/die-at holds
# "before TOOL ARGS" or "after TOOL ARGS" (the tool's command line), or
# "during apt-get install ARGS" (dpkg killed half-way: testbed apt-get).
TOOL_LINE="$(basename "$0")${*:+ $*}"
die_point() {
  [[ -f $STATE/die-at && $(cat "$STATE/die-at") == "$1 $TOOL_LINE" ]] || return 0
  rm -f "$STATE/die-at"
  echo "testbed: killing the caller $1 '$TOOL_LINE', as the test asked" >&2
  kill -KILL "$PPID" 2>/dev/null || true
  kill -KILL $$
}
die_point before
# shellcheck disable=SC2154 # status is set by the trap itself
trap 'status=$?; ((status != 0)) || die_point after' EXIT

# The repository URI of the configured apt source ("deb [opts] URI /").
repo_uri() {
  [[ -f $SOURCES ]] || die 100 "E: $SOURCES is missing"
  awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { sub(/\/$/, "", $i); print $i; exit } }' "$SOURCES"
}

installed_version() { cat "$STATE/installed/$1" 2>/dev/null || true; }

is_held() { [[ -f "$STATE/holds/$1" ]]; }

# Versions of a package in the last fetched index, one per line.
available_versions() {
  [[ -f "$LISTS/Packages" ]] || return 0
  awk -v pkg="$1" '
    /^Package: / { p = $2 }
    /^Version: / { if (p == pkg) print $2 }
  ' "$LISTS/Packages" | sort -u
}

# Calls the API simulator with the node's credentials.
sim_api() {
  local method=$1 path=$2 body=${3:-} type=${4:-application/json}
  curl -sS --fail-with-body --cacert "$SIM_CA" -H "Authorization: Bearer $(cat "$SIM_TOKEN_FILE")" \
    -H "Content-Type: $type" -X "$method" ${body:+--data "$body"} "$SIM_URL$path"
}
