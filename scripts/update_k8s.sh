#!/usr/bin/env bash
# Upgrades the Kubernetes packages of this node, the kubeadm way. Meant to be
# piped over SSH:
#
#   ssh node 'bash -s' -- --role worker --release 1.34.5 < update_k8s.sh
#
# Usage:
#   update_k8s.sh --role master|control-plane|worker --release X.Y.Z [--dry-run]
#   update_k8s.sh --repo-minor X.Y [--dry-run]
#   update_k8s.sh --containerd X.Y.Z [--dry-run]
#
#   --role master         the first control plane: kubeadm upgrade apply vX.Y.Z
#   --role control-plane  further control planes: kubeadm upgrade node
#   --role worker         kubeadm upgrade node, then kubelet and kubectl
#   --release X.Y.Z       the Kubernetes release; the package revision (1.1, 2.1, ...)
#                         is read from apt-cache madison, never assumed
#   --repo-minor X.Y      point the apt source at the X.Y repository and refresh it
#                         (before a minor upgrade); nothing else changes
#   --containerd X.Y.Z    bring the installed containerd package (containerd.io or
#                         containerd) to X.Y.Z, then restart containerd and kubelet;
#                         the package revision is read from apt-cache madison
#   --dry-run             print every command that would change the node, run none
#
# Idempotent: what is already at the target is left alone, a second run
# reports "already at X.Y.Z", and a run interrupted half-way completes when
# run again. Exit codes: 0 done (or nothing to do), 1 a step failed,
# 2 bad arguments (nothing was changed).
set -euo pipefail

# Test beds set K8S_NODE_ROOT to keep a node's files in a folder; on a real
# node it is empty and paths are the usual ones.
ROOT=${K8S_NODE_ROOT:-}
SOURCES="$ROOT/etc/apt/sources.list.d/kubernetes.list"
MANIFESTS="$ROOT/etc/kubernetes/manifests"
# Set before the first change of a run and removed once the kubelet has
# restarted: a run killed in between (a dropped SSH session, a killed
# orchestrator) leaves it, and the next run restarts the kubelet even
# though every package is already at the target.
RESTART_PENDING="$ROOT/var/lib/k8s-upgrade/kubelet-restart-pending"
PACKAGES=(kubeadm kubelet kubectl)

usage() {
  sed -n '/^# Usage:/,/^# Idempotent/p' "${BASH_SOURCE[0]}" 2>/dev/null | sed '$d; s/^# \{0,1\}//' >&2 ||
    true
  echo "usage: update_k8s.sh --role master|control-plane|worker --release X.Y.Z [--dry-run]" >&2
  echo "       update_k8s.sh --repo-minor X.Y [--dry-run]" >&2
  echo "       update_k8s.sh --containerd X.Y.Z [--dry-run]" >&2
}

fail_usage() {
  echo "update_k8s.sh: $*" >&2
  usage
  exit 2
}

role="" release="" repo_minor="" containerd="" dry_run=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --role) [[ $# -ge 2 ]] || fail_usage "--role needs a value"; role=$2; shift ;;
    --release) [[ $# -ge 2 ]] || fail_usage "--release needs a value"; release=$2; shift ;;
    --repo-minor) [[ $# -ge 2 ]] || fail_usage "--repo-minor needs a value"; repo_minor=$2; shift ;;
    --containerd) [[ $# -ge 2 ]] || fail_usage "--containerd needs a value"; containerd=$2; shift ;;
    --dry-run) dry_run=1 ;;
    -h | --help) usage; exit 0 ;;
    *) fail_usage "unknown argument: $1" ;;
  esac
  shift
done

if [[ -n $repo_minor ]]; then
  [[ -z $role && -z $release && -z $containerd ]] || fail_usage "--repo-minor goes alone (with --dry-run)"
  [[ $repo_minor =~ ^[0-9]+\.[0-9]+$ ]] || fail_usage "--repo-minor must be X.Y, got '$repo_minor'"
elif [[ -n $containerd ]]; then
  [[ -z $role && -z $release ]] || fail_usage "--containerd goes alone (with --dry-run)"
  [[ $containerd =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail_usage "--containerd must be X.Y.Z, got '$containerd'"
else
  case $role in
    master | control-plane | worker) ;;
    "") fail_usage "--role is required" ;;
    *) fail_usage "unknown role '$role' (master, control-plane or worker)" ;;
  esac
  [[ -n $release ]] || fail_usage "--release is required"
  [[ $release =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail_usage "--release must be X.Y.Z, got '$release'"
fi

step() { printf '==> %s\n' "$*"; }

# Runs a command that changes the node, or only prints it with --dry-run.
change() {
  if ((dry_run)); then
    printf 'would run: %s\n' "$*"
  else
    printf '+ %s\n' "$*"
    "$@"
  fi
}

# ---- repository rewrite (before a minor upgrade) ---------------------------
if [[ -n $repo_minor ]]; then
  [[ -f $SOURCES ]] || { echo "update_k8s.sh: $SOURCES is missing" >&2; exit 1; }
  if grep -q "/core:/stable:/v$repo_minor/deb/" "$SOURCES"; then
    step "apt source already at v$repo_minor"
  else
    grep -q '/core:/stable:/v[0-9]*\.[0-9]*/deb/' "$SOURCES" ||
      { echo "update_k8s.sh: no pkgs.k8s.io source line in $SOURCES" >&2; exit 1; }
    step "pointing the apt source at v$repo_minor"
    change sed -i "s|/core:/stable:/v[0-9]*\.[0-9]*/deb/|/core:/stable:/v$repo_minor/deb/|" "$SOURCES"
  fi
  step "refreshing the package lists"
  change apt-get update -q
  exit 0
fi

installed() { dpkg-query -W --showformat='${Version}' "$1" 2>/dev/null || true; }

# ---- containerd (when the master's runtime is older than the workers') ------
if [[ -n $containerd ]]; then
  package=""
  for candidate in containerd.io containerd; do
    if [[ -n $(installed "$candidate") ]]; then package=$candidate; break; fi
  done
  [[ -n $package ]] || { echo "update_k8s.sh: neither containerd.io nor containerd is installed" >&2; exit 1; }
  step "resolving $package $containerd in the configured repositories"
  # 1.7.27-1 (Docker's containerd.io), 1.7.24~ds1-1 (Debian's containerd).
  wanted=$(apt-cache madison "$package" |
    awk -v r="$containerd" '{ v = $3; if (index(v, r) == 1 && (length(v) == length(r) || substr(v, length(r) + 1, 1) ~ /[-~+]/)) { print v; exit } }')
  if [[ -z $wanted ]]; then
    echo "update_k8s.sh: containerd $containerd is not in the configured repositories ($package):" >&2
    apt-cache madison "$package" | head -n 5 >&2 || true
    exit 1
  fi
  echo "package version $wanted"
  if [[ $(installed "$package") == "$wanted" ]]; then
    step "containerd already at $containerd"
    exit 0
  fi
  held=0
  if apt-mark showhold | grep -qx "$package"; then held=1; fi
  step "installing $package $wanted"
  if ((held)); then change apt-mark unhold "$package"; fi
  change apt-get install -y -q "$package=$wanted"
  if ((held)); then change apt-mark hold "$package"; fi
  step "restarting containerd and kubelet"
  change systemctl restart containerd
  change systemctl restart kubelet
  if ((dry_run)); then step "dry run: nothing was changed"; else step "done: containerd at $containerd"; fi
  exit 0
fi

# ---- package upgrade --------------------------------------------------------

step "resolving $release in the configured repository"
revision=$(apt-cache madison kubeadm | awk -v r="$release" '$3 ~ ("^" r "-") { print $3; exit }')
if [[ -z $revision ]]; then
  echo "update_k8s.sh: release $release is not in the configured repository:" >&2
  apt-cache madison kubeadm | head -n 5 >&2 || true
  exit 1
fi
echo "package version $revision"

changed=0

# Every change below ends in a kubelet restart; say so on disk first.
restart_pending() {
  if ((!dry_run)); then
    mkdir -p "${RESTART_PENDING%/*}"
    : >"$RESTART_PENDING"
  fi
}

if [[ $(installed kubeadm) != "$revision" ]]; then
  restart_pending
  step "installing kubeadm $revision"
  change apt-mark unhold kubeadm
  change apt-get install -y -q "kubeadm=$revision"
  change apt-mark hold kubeadm
  changed=1
fi

apiserver_at_target() {
  grep -q "image: .*kube-apiserver:v$release\$" "$MANIFESTS/kube-apiserver.yaml" 2>/dev/null
}

case $role in
  master)
    if apiserver_at_target; then
      step "control plane already at v$release"
    else
      restart_pending
      step "upgrading the control plane (kubeadm upgrade apply v$release)"
      change kubeadm upgrade apply "v$release" -y
      changed=1
    fi
    ;;
  control-plane)
    if apiserver_at_target; then
      step "control plane already at v$release"
    else
      restart_pending
      step "upgrading this control plane (kubeadm upgrade node)"
      change kubeadm upgrade node
      changed=1
    fi
    ;;
  worker)
    if [[ $(installed kubelet) != "$revision" ]]; then
      restart_pending
      step "upgrading the kubelet configuration (kubeadm upgrade node)"
      change kubeadm upgrade node
      changed=1
    fi
    ;;
esac

if [[ $(installed kubelet) != "$revision" || $(installed kubectl) != "$revision" ]]; then
  restart_pending
  step "installing kubelet and kubectl $revision"
  change apt-mark unhold kubelet kubectl
  change apt-get install -y -q "kubelet=$revision" "kubectl=$revision"
  change apt-mark hold kubelet kubectl
  changed=1
fi

for pkg in "${PACKAGES[@]}"; do
  if ! apt-mark showhold | grep -qx "$pkg"; then
    step "holding $pkg"
    change apt-mark hold "$pkg"
    changed=1
  fi
done

if ((changed)) || [[ -f $RESTART_PENDING ]] || ! systemctl is-active --quiet kubelet 2>/dev/null; then
  if ((!changed)) && [[ -f $RESTART_PENDING ]]; then
    step "restarting kubelet: an earlier run stopped before its restart"
    changed=1
  else
    step "restarting kubelet"
  fi
  change systemctl daemon-reload
  change systemctl restart kubelet
  ((dry_run)) || rm -f "$RESTART_PENDING"
fi

if ((changed)); then
  if ((dry_run)); then step "dry run: nothing was changed"; else step "done: $role at $release"; fi
else
  step "already at $release"
fi
