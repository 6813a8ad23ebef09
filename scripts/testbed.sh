#!/usr/bin/env bash
# One command up, one command down: the test bed (a simulated cluster whose
# parts are real). `up` prints where its env file is; `down` stops every
# process it started and removes its folder.
#   scripts/testbed.sh up [--scenario default|ha|microk8s|microk8s-ha|synthetic-N] [--running-version X.Y.Z]
#                         [--master-containerd X.Y.Z] [--dir DIR]
#   scripts/testbed.sh down [--dir DIR]
set -euo pipefail
exec python3 "$(dirname "$0")/../testbed/testbed.py" "$@"
