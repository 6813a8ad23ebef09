#!/usr/bin/env bash
# The main job, end to end, on this machine. For now: builds both binaries
# and shows what the detector will do; the simulated cluster (test bed)
# turns this into a full upgrade run.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
swift build -c release --product k8s-version-check
swift build -c release --product k8s-upgrade
bin=$(swift build -c release --show-bin-path)
"$bin/k8s-version-check" --help
