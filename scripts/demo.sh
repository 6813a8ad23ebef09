#!/usr/bin/env bash
# The main job on this machine, against the built-in simulated cluster.
# Builds the binaries, brings up the test bed (API simulator, one sshd per
# node, package repository, etcd, Prometheus, Pushgateway, Slack stand-in)
# with the orchestrator serving it, shows the cluster as kubectl and the
# master see it, runs the detector, which dispatches a patch upgrade to the
# orchestrator, follows the job to its end with the CLI's live view, prints
# the summary and the cluster after it, and tears the bed down.
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
./scripts/testbed.sh up --dir "$bed" --bin-dir "$bin" --orchestrator --soak 2
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
echo "== the detector (k8s-version-check; JSON logs on stderr), dispatching to the orchestrator"
"$bin/k8s-version-check" --master-address "127.0.0.1:$master_port" --ssh-user "$TESTBED_SSH_USER" \
  --ssh-key-file "$TESTBED_SSH_KEY" --known-hosts-file "$TESTBED_KNOWN_HOSTS" --repo-base "$TESTBED_REPO_BASE" \
  --pushgateway-url "$TESTBED_PUSHGATEWAY_URL" --orchestrator-url "$TESTBED_ORCHESTRATOR_URL" \
  --orchestrator-token-file "$TESTBED_ORCHESTRATOR_TOKEN_FILE" 2>/dev/null
echo
echo "== the job, followed with k8s-upgrade status --follow"
export K8SUP_SERVER=$TESTBED_ORCHESTRATOR_URL K8SUP_API_TOKEN_FILE=$TESTBED_ORCHESTRATOR_TOKEN_FILE
"$bin/k8s-upgrade" status 1 --follow --interval 0.5 | grep -v '  output  \|^[0-9:]*  [a-z]* [a-z0-9-]*  [+=]' || true
echo
echo "== the cluster after it"
kubectl --cache-dir "$bed/kube-cache" get nodes
echo
echo "== what the Pushgateway holds"
curl -s "$TESTBED_PUSHGATEWAY_URL/metrics" | grep -E '^k8s_(upgrade|version)' | sed 's/{instance="",/{/'
echo
echo "== Slack notices (the stand-in's log)"
curl -s "$TESTBED_WEBHOOK_URL/_messages" | python3 -c 'import json,sys; [print("  " + m["body"]["text"].splitlines()[0]) for m in json.load(sys.stdin)]'
echo
"$bin/k8s-upgrade" status 1 >/dev/null
