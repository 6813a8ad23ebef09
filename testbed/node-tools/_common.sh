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
