#!/usr/bin/env bash
# Stops every server a test run started below ROOT (each fixture writes a
# *.pid file next to its other files), then removes ROOT.
set -euo pipefail
root=${1:?usage: stop-test-servers.sh ROOT}
[[ -d $root ]] || exit 0
while IFS= read -r -d '' pidfile; do
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
  fi
done < <(find "$root" -name '*.pid' -print0)
rm -rf "$root"
