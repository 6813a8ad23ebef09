#!/usr/bin/env bash
# Runs every check and test of the project, from a fresh clone: installs what
# is missing, checks formatting and shell scripts, builds once, runs all
# tests in one process. Servers the tests need are started by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

echo "== format (swift format lint --strict)"
swift format lint --strict --recursive Sources Tests Package.swift

echo "== shellcheck"
mapfile -t shell_scripts < <(git ls-files '*.sh' .ci/run 'testbed/node-tools/*')
shellcheck "${shell_scripts[@]}"

echo "== alert rules (promtool check and unit tests; both forms in sync)"
promtool check rules deploy/prometheus/*.rules.yml testbed/gate_rules.yml
promtool test rules deploy/prometheus/tests/*.test.yml
python3 scripts/check-rules.py

echo "== Grafana dashboard (schema, every query parsed by promtool, every metric one the product exposes)"
python3 scripts/check-dashboard.py

echo "== deploy/ (kubectl kustomize, Kubernetes schemas, RBAC and policies, Dockerfile)"
python3 scripts/check-deploy.py

echo "== build"
# The real-apt node's Debian root (debootstrap, about 40 s, most of it
# waiting on the mirror) is built beside the Swift build, once; its tests
# find it there.
mkdir -p .build
python3 testbed/real_apt.py base --base-cache .build/debian-base-bookworm >.build/debian-base.log 2>&1 &
base_pid=$!
swift build --build-tests
wait "$base_pid" || { cat .build/debian-base.log >&2; echo "the real-apt node's Debian root failed" >&2; exit 1; }

echo "== tests"
# Test fixtures keep their servers' files under this folder; whatever a
# crashed run leaves behind is stopped here, before and after.
export K8SUP_TEST_ROOT="${K8SUP_TEST_ROOT:-$PWD/.build/test-runs}"
./scripts/stop-test-servers.sh "$K8SUP_TEST_ROOT"
trap './scripts/stop-test-servers.sh "$K8SUP_TEST_ROOT"' EXIT
swift test --skip-build "$@"
