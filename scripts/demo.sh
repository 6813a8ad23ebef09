#!/usr/bin/env bash
# The main job on this machine, against the built-in simulated cluster.
# Today: builds the binaries, brings up the test bed (API simulator, one
# sshd per node, package repository, etcd, Prometheus, Pushgateway, Slack
# stand-in), shows the cluster as kubectl and the master see it, runs the
# detector against it (detect-only: the orchestrator that would take the
# job is not built yet), and tears the bed down.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
echo "== build"
swift build 2>&1 | grep -E '^(Build complete|error)' || true
bin=$(swift build --show-bin-path)
[[ -x $bin/k8s-cluster-sim && -x $bin/k8s-version-check ]] || { echo "build failed" >&2; exit 1; }

bed=$(mktemp -d)/testbed
trap './scripts/testbed.sh down --dir "$bed"' EXIT
echo "== test bed up"
./scripts/testbed.sh up --dir "$bed" --bin-dir "$bin"
# shellcheck source=/dev/null
source "$bed/env"

echo "== the cluster, through the real kubectl"
kubectl --cache-dir "$bed/kube-cache" get nodes -o wide
echo
echo "== newest kubeadm packages, as the master sees them (apt-cache madison over SSH)"
master_port=${TESTBED_SSH_PORTS#*master=}
master_port=${master_port%% *}
ssh -i "$TESTBED_SSH_KEY" -o UserKnownHostsFile="$TESTBED_KNOWN_HOSTS" -o StrictHostKeyChecking=yes \
  -o LogLevel=ERROR -p "$master_port" "$TESTBED_SSH_USER@127.0.0.1" 'apt-cache madison kubeadm'
echo
echo "== next minor in the repository"
for minor in 1.35 1.36; do
  printf 'v%s: HTTP %s\n' "$minor" "$(curl -s -o /dev/null -w '%{http_code}' -I "$TESTBED_REPO_BASE/v$minor/deb/Release")"
done
echo
echo "== the detector (k8s-version-check --detect-only; JSON logs on stderr)"
"$bin/k8s-version-check" --master-address "127.0.0.1:$master_port" --ssh-user "$TESTBED_SSH_USER" \
  --ssh-key-file "$TESTBED_SSH_KEY" --known-hosts-file "$TESTBED_KNOWN_HOSTS" --repo-base "$TESTBED_REPO_BASE" \
  --pushgateway-url "$TESTBED_PUSHGATEWAY_URL" --orchestrator-url "$TESTBED_ORCHESTRATOR_URL" \
  --orchestrator-token-file "$TESTBED_ORCHESTRATOR_TOKEN_FILE" --detect-only 2>/dev/null
echo
echo "== what it pushed to the Pushgateway"
curl -s "$TESTBED_PUSHGATEWAY_URL/metrics" | grep -E '^k8s_(upgrade|version)' | sed 's/{instance="",job="k8s-version-check",/{/'
echo
