#!/usr/bin/env bash
# Upgrades the Kubernetes packages of this node, the kubeadm way. Meant to be
# piped over SSH:
#
#   ssh node 'bash -s' -- --role worker --release 1.34.5 < update_k8s.sh
#
# Usage:
#   update_k8s.sh --role master|control-plane|worker --release X.Y.Z [--dry-run]
#   update_k8s.sh --role worker --release X.Y.Z --rollback [--dry-run]
#   update_k8s.sh --role master --release X.Y.Z --restore-snapshot PATH [--sha256 HEX] [--dry-run]
#   update_k8s.sh --repo-minor X.Y [--dry-run]
#   update_k8s.sh --containerd X.Y.Z [--dry-run]
#   update_k8s.sh --snap microk8s --channel X.Y/stable --release X.Y.Z [--dry-run]
#   update_k8s.sh --snap-revert microk8s --channel X.Y/stable --release X.Y.Z
#                 [--restore-snapshot PATH [--sha256 HEX]] [--dry-run]
#   update_k8s.sh --k3s server|agent --release X.Y.Z+k3sN --artifacts URL [--dry-run]
#   update_k8s.sh --k3s-revert server|agent --release X.Y.Z+k3sN [--dry-run]
#   update_k8s.sh --k3s-revert server --release X.Y.Z+k3sN --restore-snapshot PATH [--sha256 HEX] [--dry-run]
#   update_k8s.sh --run-id ID [--from ATTEMPT:LINES] ARGS...
#   update_k8s.sh --forget-run ID
#
#   --role master         the first control plane: kubeadm upgrade apply vX.Y.Z
#   --role control-plane  further control planes: kubeadm upgrade node
#   --role worker         kubeadm upgrade node, then kubelet and kubectl
#   --release X.Y.Z       the Kubernetes release; the package revision (1.1, 2.1, ...)
#                         is read from apt-cache madison, never assumed
#   --rollback            (with --role worker) take the worker back to the older
#                         --release: the packages installed with apt's
#                         --allow-downgrades and held again, the kubelet restarted;
#                         kubeadm upgrade node is not run (the kubelet's
#                         configuration is the cluster's). A --release newer than
#                         the installed kubelet is refused
#   --restore-snapshot PATH  (with --role master, a cluster with this one control
#                         plane) take the control plane back to the older --release
#                         through the etcd snapshot PATH taken before the upgrade:
#                         the snapshot checked (--sha256, then snapshot status) and
#                         kubeadm's backup of the --release manifests found (the
#                         oldest /etc/kubernetes/tmp/kubeadm-backup-manifests-* newer
#                         than the snapshot) before anything changes; the static pods
#                         stopped (their manifests moved aside) and waited for
#                         (crictl); etcd restored with etcd.yaml's name and peer URL
#                         into a new folder that replaces its data folder (the old
#                         one kept beside it); the packages at --release with apt's
#                         --allow-downgrades, held; the backed-up manifests put back;
#                         the kubelet restarted; etcd waited for. Every change to the
#                         cluster since the snapshot is lost
#                         With --snap-revert microk8s (the single control plane):
#                         PATH is the job's `microk8s dbctl backup` archive, checked
#                         (--sha256, then listed: it must hold the folder dbctl
#                         restores from) before anything changes; then the revert
#                         (snapd brings back the revision's data as it was at the
#                         refresh), then once `microk8s status --wait-ready`
#                         answers, `microk8s dbctl restore PATH` (its exits 10 and
#                         3, MicroK8s still starting, tried again for 300 s).
#                         With --k3s-revert server (the single server): PATH is the
#                         job's archive of the K3s datastore and token, checked
#                         (--sha256, its listing, the datastore it holds is this
#                         server's, the token is this server's) before anything
#                         changes; then k3s stopped, the kept binary of --release put
#                         back, the datastore restored (SQLite: the copy replaces
#                         state.db, the old files kept beside it in
#                         db/before-restore-<backup name>; embedded etcd: k3s server
#                         --cluster-reset --cluster-reset-restore-path), k3s started
#   --sha256 HEX          the snapshot's SHA-256, as the orchestrator recorded it
#   --repo-minor X.Y      point the apt source at the X.Y repository and refresh it
#                         (before a minor upgrade); nothing else changes
#   --containerd X.Y.Z    bring the installed containerd package (containerd.io or
#                         containerd) to X.Y.Z, then restart containerd and kubelet;
#                         the package revision is read from apt-cache madison
#   --snap microk8s       (MicroK8s) refresh the snap to --channel with --no-wait and
#                         follow snapd's change until it is done: exit 10 (another
#                         change, such as an auto-refresh, in progress) is waited
#                         out; "no updates available" means nothing to do; a
#                         failed change (which snapd undoes) fails the run. Then
#                         the refresh hold is set again and the installed release
#                         must be --release, tracking --channel
#   --snap-revert microk8s  (MicroK8s) after a failed refresh: snap revert unless the
#                         snap already runs --release, then hold it and switch its
#                         tracking back to --channel (revert keeps the new channel,
#                         which a later auto-refresh would follow)
#   --k3s server|agent    (K3s) swap the k3s binary as the k3s-upgrade image does:
#                         fetch <URL>/v<release>/k3s[-arm64|-armhf] and its
#                         sha256sum-<arch>.txt, refuse a checksum mismatch, a binary
#                         that is not --release and a downgrade; keep the binary
#                         it replaces under /var/lib/k8s-upgrade/k3s-kept; install
#                         with the old binary's owner, mode and SELinux context (a
#                         rename, so the running k3s keeps its file); restart k3s
#                         (server) or k3s-agent (agent)
#   --artifacts URL       (K3s) where releases are published, GitHub's layout:
#                         https://github.com/k3s-io/k3s/releases/download or a mirror
#   --k3s-revert server|agent  (K3s) put back the kept binary of --release (the one
#                         the last swap replaced) and restart the service
#   --dry-run             print every command that would change the node, run none
#   --run-id ID           run detached from this session, so that a dropped SSH
#                         connection or a restarted orchestrator does not kill it
#                         mid-apt: the script is kept under
#                         /var/lib/k8s-upgrade/runs/ID with its log and exit
#                         status, started by systemd-run where systemd runs (else
#                         setsid), under a node-wide lock (one run at a time);
#                         this session follows the log and exits with the run's
#                         status. A run of that ID that is running is followed
#                         (re-attached to), not started twice, and one that
#                         succeeded is reported; one that failed or was killed
#                         is started again.
#   --from ATTEMPT:LINES  when re-attaching: the lines of that attempt's log
#                         already seen, which are not printed again
#   --forget-run ID       remove the record of run ID, which has ended (refused
#                         while it runs), so that the same ID starts anew: after
#                         a node was reverted, its earlier successful step is no
#                         longer what the node runs
#
# Idempotent and convergent: what is already at the target is left alone, a
# second run reports "already at X.Y.Z", and a run killed at any point
# completes when run again (dpkg left half-configured is finished first, a
# kubelet or containerd left on its old binary is restarted). Exit codes:
# 0 done (or nothing to do), 1 a step failed, 2 bad arguments (nothing was
# changed), 75 (--run-id) the run stopped without an exit status (killed, or
# the node restarted): run again with the same ID to start it anew.
set -euo pipefail

# Test beds set K8S_NODE_ROOT to keep a node's files in a folder; on a real
# node it is empty and paths are the usual ones.
ROOT=${K8S_NODE_ROOT:-}
# The Kubernetes apt source: the one-line format (kubernetes.list) or deb822
# (kubernetes.sources); with neither, the first file that names pkgs.k8s.io's
# path.
SOURCES_DIR="$ROOT/etc/apt/sources.list.d"
MANIFESTS="$ROOT/etc/kubernetes/manifests"
# Set before the first change of a run and removed once the kubelet has
# restarted: a run killed in between (a dropped SSH session, a killed
# orchestrator) leaves it, and the next run restarts the kubelet even
# though every package is already at the target.
STATE_DIR="$ROOT/var/lib/k8s-upgrade"
RESTART_PENDING="$STATE_DIR/kubelet-restart-pending"
CONTAINERD_PENDING="$STATE_DIR/containerd-restart-pending"
RUNS="$STATE_DIR/runs"
NODE_LOCK="$STATE_DIR/node.lock"
PACKAGES=(kubeadm kubelet kubectl)
# How long to wait for apt's lock (unattended-upgrades, another apt) and for
# another run of this script on the node.
APT_LOCK_TIMEOUT=${K8S_UPGRADE_APT_LOCK_TIMEOUT:-300}
NODE_LOCK_TIMEOUT=${K8S_UPGRADE_NODE_LOCK_TIMEOUT:-900}

usage() {
  sed -n '/^# Usage:/,/^# Idempotent/p' "${BASH_SOURCE[0]}" 2>/dev/null | sed '$d; s/^# \{0,1\}//' >&2 ||
    true
  echo "usage: update_k8s.sh --role master|control-plane|worker --release X.Y.Z [--rollback] [--dry-run]" >&2
  echo "       update_k8s.sh --repo-minor X.Y [--dry-run]" >&2
  echo "       update_k8s.sh --containerd X.Y.Z [--dry-run]" >&2
  echo "       update_k8s.sh --snap|--snap-revert microk8s --channel X.Y/stable --release X.Y.Z [--dry-run]" >&2
  echo "       update_k8s.sh --snap-revert microk8s ... --restore-snapshot PATH [--sha256 HEX]" >&2
  echo "       update_k8s.sh --k3s server|agent --release X.Y.Z+k3sN --artifacts URL [--dry-run]" >&2
  echo "       update_k8s.sh --k3s-revert server|agent --release X.Y.Z+k3sN [--restore-snapshot PATH [--sha256 HEX]] [--dry-run]" >&2
  echo "       update_k8s.sh --run-id ID [--from ATTEMPT:LINES] ARGS..." >&2
  echo "       update_k8s.sh --forget-run ID" >&2
}

fail_usage() {
  echo "update_k8s.sh: $*" >&2
  usage
  exit 2
}

role="" release="" repo_minor="" containerd="" snap="" snap_revert="" channel="" dry_run=0
k3s="" k3s_revert="" artifacts="" rollback=0 restore_snapshot="" sha256=""
run_id="" from="" in_run="" forget_run=""
# The arguments a detached run is started with: all but the run's own.
run_args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --role) [[ $# -ge 2 ]] || fail_usage "--role needs a value"; role=$2; run_args+=("$1" "$2"); shift ;;
    --release) [[ $# -ge 2 ]] || fail_usage "--release needs a value"; release=$2; run_args+=("$1" "$2"); shift ;;
    --repo-minor) [[ $# -ge 2 ]] || fail_usage "--repo-minor needs a value"; repo_minor=$2; run_args+=("$1" "$2"); shift ;;
    --containerd) [[ $# -ge 2 ]] || fail_usage "--containerd needs a value"; containerd=$2; run_args+=("$1" "$2"); shift ;;
    --snap) [[ $# -ge 2 ]] || fail_usage "--snap needs a value"; snap=$2; run_args+=("$1" "$2"); shift ;;
    --snap-revert) [[ $# -ge 2 ]] || fail_usage "--snap-revert needs a value"; snap_revert=$2; run_args+=("$1" "$2"); shift ;;
    --channel) [[ $# -ge 2 ]] || fail_usage "--channel needs a value"; channel=$2; run_args+=("$1" "$2"); shift ;;
    --k3s) [[ $# -ge 2 ]] || fail_usage "--k3s needs a value"; k3s=$2; run_args+=("$1" "$2"); shift ;;
    --k3s-revert) [[ $# -ge 2 ]] || fail_usage "--k3s-revert needs a value"; k3s_revert=$2; run_args+=("$1" "$2"); shift ;;
    --artifacts) [[ $# -ge 2 ]] || fail_usage "--artifacts needs a value"; artifacts=$2; run_args+=("$1" "$2"); shift ;;
    --dry-run) dry_run=1 ;;
    --rollback) rollback=1; run_args+=("$1") ;;
    --restore-snapshot) [[ $# -ge 2 ]] || fail_usage "--restore-snapshot needs a value"; restore_snapshot=$2; run_args+=("$1" "$2"); shift ;;
    --sha256) [[ $# -ge 2 ]] || fail_usage "--sha256 needs a value"; sha256=$2; run_args+=("$1" "$2"); shift ;;
    --run-id) [[ $# -ge 2 ]] || fail_usage "--run-id needs a value"; run_id=$2; shift ;;
    --from) [[ $# -ge 2 ]] || fail_usage "--from needs a value"; from=$2; shift ;;
    --forget-run) [[ $# -ge 2 ]] || fail_usage "--forget-run needs a value"; forget_run=$2; shift ;;
    # Internal: the detached process of a run.
    --in-run) [[ $# -ge 2 ]] || fail_usage "--in-run needs a value"; in_run=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) fail_usage "unknown argument: $1" ;;
  esac
  shift
done

if [[ -n $forget_run ]]; then
  [[ $forget_run =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ ]] ||
    fail_usage "--forget-run must be letters, digits, '.', '_' or '-' (at most 128), got '$forget_run'"
  [[ -z $run_id && -z $in_run && -z $from && ${#run_args[@]} -eq 0 && $dry_run == 0 ]] ||
    fail_usage "--forget-run goes alone"
fi

if [[ -n $run_id || -n $in_run ]]; then
  [[ -z $run_id || $run_id =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ ]] ||
    fail_usage "--run-id must be letters, digits, '.', '_' or '-' (at most 128), got '$run_id'"
  [[ -z $from || $from =~ ^[0-9]+:[0-9]+$ ]] || fail_usage "--from must be ATTEMPT:LINES, got '$from'"
  ((!dry_run)) || fail_usage "--run-id does not go with --dry-run (a dry run changes nothing to re-attach to)"
elif [[ -n $from ]]; then
  fail_usage "--from needs --run-id"
fi

if [[ -n $forget_run ]]; then
  : # checked above; nothing else to check
elif [[ -n $snap || -n $snap_revert ]]; then
  [[ -z $snap || -z $snap_revert ]] || fail_usage "--snap and --snap-revert do not go together"
  [[ ${snap:-$snap_revert} == microk8s ]] || fail_usage "--snap and --snap-revert take microk8s, got '${snap:-$snap_revert}'"
  [[ -z $role && -z $repo_minor && -z $containerd ]] || fail_usage "--snap goes with --channel and --release only"
  [[ $channel =~ ^[0-9]+\.[0-9]+/stable$ ]] || fail_usage "--channel must be X.Y/stable, got '$channel'"
  [[ $release =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail_usage "--release must be X.Y.Z, got '$release'"
  [[ ${channel%/stable} == "${release%.*}" ]] || fail_usage "--release $release is not in --channel $channel"
elif [[ -n $channel ]]; then
  fail_usage "--channel goes with --snap or --snap-revert"
elif [[ -n $k3s || -n $k3s_revert ]]; then
  [[ -z $k3s || -z $k3s_revert ]] || fail_usage "--k3s and --k3s-revert do not go together"
  case ${k3s:-$k3s_revert} in
    server | agent) ;;
    *) fail_usage "--k3s and --k3s-revert take server or agent, got '${k3s:-$k3s_revert}'" ;;
  esac
  [[ -z $role && -z $repo_minor && -z $containerd ]] || fail_usage "--k3s goes with --release and --artifacts only"
  [[ $release =~ ^[0-9]+\.[0-9]+\.[0-9]+\+k3s[1-9][0-9]{0,5}$ ]] ||
    fail_usage "--release must be a K3s release X.Y.Z+k3sN, got '$release'"
  if [[ -n $k3s ]]; then
    [[ $artifacts =~ ^https?://[A-Za-z0-9._~%+-][A-Za-z0-9._~/:%+-]*$ ]] ||
      fail_usage "--artifacts must be an http:// or https:// URL (letters, digits, - . _ ~ / : % +), got '$artifacts'"
  else
    [[ -z $artifacts ]] || fail_usage "--k3s-revert takes no --artifacts (it puts back the kept binary)"
  fi
elif [[ -n $artifacts ]]; then
  fail_usage "--artifacts goes with --k3s"
elif [[ -n $repo_minor ]]; then
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
if ((rollback)) && [[ $role != worker ]]; then
  fail_usage "--rollback goes with --role worker only (a control plane goes back through a datastore snapshot restore)"
fi
if [[ -n $restore_snapshot ]]; then
  [[ $role == master || -n $snap_revert || $k3s_revert == server ]] ||
    fail_usage "--restore-snapshot goes with --role master, --snap-revert microk8s or --k3s-revert server only (with several control planes, every datastore member is restored by hand: see the runbook)"
  ((!rollback)) || fail_usage "--restore-snapshot and --rollback do not go together"
  [[ $restore_snapshot =~ ^/[A-Za-z0-9._/+-]+$ && $restore_snapshot != *..* ]] ||
    fail_usage "--restore-snapshot must be an absolute path (letters, digits, . _ / + -, no ..), got '$restore_snapshot'"
fi
[[ -z $sha256 || $sha256 =~ ^[0-9a-f]{64}$ ]] || fail_usage "--sha256 must be 64 lowercase hex digits, got '$sha256'"
[[ -z $sha256 || -n $restore_snapshot ]] || fail_usage "--sha256 goes with --restore-snapshot"

step() { printf '==> %s\n' "$*"; }

# What a failure leaves behind beyond its own message (set by a step that
# stops a service: a K3s restore).
left_behind=""
fail() {
  echo "update_k8s.sh: $*${left_behind:+; $left_behind}" >&2
  exit 1
}

# A restore (--restore-snapshot) leaves this mark once the datastore is
# back, so that a run killed after it does not restore a second time over
# what the cluster wrote since.
RESTORED_MARK=""
[[ -z $restore_snapshot ]] || RESTORED_MARK="$STATE_DIR/restored-${restore_snapshot##*/}"

# The job's snapshot, checked before the first change of a restore: on this
# node, and with --sha256 the very bytes the orchestrator recorded.
check_snapshot() {
  [[ -f $restore_snapshot ]] ||
    fail "the snapshot $restore_snapshot is not on this node (the orchestrator keeps a copy: see the runbook's rollback section); nothing was changed"
  if [[ -n $sha256 ]]; then
    local actual
    actual=$(sha256sum "$restore_snapshot" | cut -d' ' -f1)
    [[ $actual == "$sha256" ]] ||
      fail "the snapshot's SHA-256 is $actual, not $sha256 as recorded: it changed since the job; nothing was changed"
    step "snapshot SHA-256 $sha256, as recorded"
  fi
}

# One run of this script changes a node at a time, detached or not: the
# node lock is taken before the first change (a run that changes nothing
# takes none) and held to the end.
have_node_lock=0
take_node_lock() {
  ((!have_node_lock)) || return 0
  mkdir -p "$STATE_DIR"
  exec 9>"$NODE_LOCK"
  if ! flock -n 9; then
    step "waiting up to ${NODE_LOCK_TIMEOUT}s for another run of update_k8s.sh on this node"
    flock -w "$NODE_LOCK_TIMEOUT" 9 ||
      { echo "update_k8s.sh: another run still holds $NODE_LOCK after ${NODE_LOCK_TIMEOUT}s" >&2; exit 1; }
  fi
  have_node_lock=1
}

# ---- detached runs (--run-id) ------------------------------------------------
# A run lives in $RUNS/ID: update_k8s.sh (this script, as started), attempt
# (a count), log.N (attempt N's output), pid, lock (held by the running
# attempt), status (its exit code, written when it ends). This session only
# follows; the run goes on without it.

note() { printf 'update_k8s.sh: %s\n' "$*" >&2; }

# Whether an attempt of the run in $1 is running: it holds $1/lock throughout.
run_alive() { [[ -f $1/pid ]] && ! flock -n "$1/lock" true 2>/dev/null; }

# Starts a new attempt of the run in $1, detached, with the arguments that
# follow; returns once it holds its lock.
start_run() {
  local run=$1 attempt
  shift
  mkdir -p "$run"
  attempt=$(($(cat "$run/attempt" 2>/dev/null || echo 0) + 1))
  rm -f "$run/pid" "$run/status"
  # A new file, renamed over the old: an attempt still reading the old one
  # (bash reads scripts as it goes) keeps its own copy.
  cp -- "${BASH_SOURCE[0]}" "$run/update_k8s.sh.new"
  mv -f "$run/update_k8s.sh.new" "$run/update_k8s.sh"
  echo "$attempt" >"$run/attempt"
  : >"$run/log.$attempt"
  if [[ -z $ROOT && -d /run/systemd/system ]] && command -v systemd-run >/dev/null; then
    # A unit of its own: not in the SSH session's scope, so not stopped with it.
    systemd-run --quiet --collect --unit "k8s-upgrade-$run_id-$attempt" \
      --description "k8s-upgrade update_k8s.sh run $run_id" \
      bash "$run/update_k8s.sh" --in-run "$run" "$@"
  else
    setsid -f bash "$run/update_k8s.sh" --in-run "$run" "$@" </dev/null >/dev/null 2>&1 7>&-
  fi
  local waited=0
  until [[ -f $run/pid ]] || [[ -f $run/status ]]; do
    # Not started yet: say so as a killed run does, so that the next
    # session finds it running, or starts it again.
    ((waited < 300)) || { note "run $run_id did not start within 30 s"; exit 75; }
    sleep 0.1
    waited=$((waited + 1))
  done
}

# Prints the run's current attempt's log from line $3 on (when $2 is that
# attempt), as it grows, and exits with the attempt's status once it ends.
follow_run() {
  local run=$1 seen_attempt=$2 skip=$3 attempt offset size finished
  attempt=$(cat "$run/attempt")
  note "following run $run_id, attempt $attempt"
  offset=0
  if [[ $seen_attempt == "$attempt" ]] && ((skip > 0)); then
    offset=$(head -n "$skip" "$run/log.$attempt" | wc -c)
  fi
  while :; do
    finished=0
    [[ -f $run/status ]] && finished=1
    size=$(stat -c %s "$run/log.$attempt")
    if ((size > offset)); then
      # Exactly the new bytes, without a pipe that SIGPIPE could end.
      dd if="$run/log.$attempt" iflag=skip_bytes,count_bytes skip="$offset" count="$((size - offset))" status=none
      offset=$size
    fi
    if ((finished)); then exit "$(cat "$run/status")"; fi
    if ! run_alive "$run" && [[ ! -f $run/status ]]; then
      sleep 0.2
      [[ -f $run/status ]] && continue
      note "run $run_id attempt $attempt stopped without an exit status (killed, or the node restarted)"
      exit 75
    fi
    sleep 0.2
  done
}

if [[ -n $forget_run ]]; then
  mkdir -p "$RUNS"
  exec 7>"$RUNS/.lock"
  flock -w 60 7 || { note "another session holds $RUNS/.lock"; exit 1; }
  if [[ -d $RUNS/$forget_run ]] && run_alive "$RUNS/$forget_run"; then
    note "run $forget_run is still running; not forgotten"
    exit 1
  fi
  rm -rf -- "${RUNS:?}/$forget_run"
  note "forgot run $forget_run: the same ID starts anew"
  exit 0
fi

if [[ -n $run_id ]]; then
  run="$RUNS/$run_id"
  mkdir -p "$RUNS"
  # One session at a time decides whether to start or follow.
  exec 7>"$RUNS/.lock"
  flock -w 60 7 || { note "another session holds $RUNS/.lock"; exit 1; }
  seen=${from%%:*} skip=${from#*:}
  [[ -n $from ]] || seen=0 skip=0
  if [[ -d $run ]] && run_alive "$run"; then
    note "re-attaching to run $run_id: attempt $(cat "$run/attempt") is still running"
  elif [[ -f $run/status && $(cat "$run/status") == 0 ]]; then
    note "re-attaching to run $run_id: attempt $(cat "$run/attempt") succeeded"
  elif [[ -f $run/status && -n $from && $seen == "$(cat "$run/attempt")" ]]; then
    # The session that followed this attempt dropped before it ended: its
    # end is reported, not replaced by a new attempt nobody asked for.
    note "re-attaching to run $run_id: attempt $seen ended with status $(cat "$run/status")"
  else
    if [[ -f $run/attempt ]]; then
      if [[ -f $run/status ]]; then
        note "run $run_id ended before (status $(cat "$run/status")); starting it again"
      else
        note "run $run_id attempt $(cat "$run/attempt") stopped without an exit status; starting it again"
      fi
    fi
    # Finished runs older than two weeks go.
    find "$RUNS" -mindepth 1 -maxdepth 1 -type d -mtime +14 -exec rm -rf {} + 2>/dev/null || true
    start_run "$run" "${run_args[@]}"
  fi
  exec 7>&-
  follow_run "$run" "$seen" "$skip"
fi

if [[ -n $in_run ]]; then
  # The detached attempt: its output is the run's log, its exit code the
  # run's status (a SIGKILL leaves none, which is how a killed run shows).
  attempt=$(cat "$in_run/attempt")
  exec >>"$in_run/log.$attempt" 2>&1
  exec 8>"$in_run/lock"
  # A follower's liveness probe holds the lock for an instant.
  flock -w 10 8 || { echo "update_k8s.sh: another attempt of this run holds its lock" >&2; exit 1; }
  # A signal (the node shutting down, systemctl stop, kill) ends the attempt
  # without a status, as a SIGKILL does: the run shows as killed and is
  # started again, never as a success of whatever command ran last.
  record_status() {
    local code=$?
    ((code < 128)) || return 0
    echo "$code" >"$in_run/status.new"
    mv -f "$in_run/status.new" "$in_run/status"
  }
  trap record_status EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  echo "$$" >"$in_run/pid"
  take_node_lock
elif ((!dry_run)) && [[ -e $NODE_LOCK ]]; then
  # Another run may be changing this node: wait for it before reading the
  # node's state (a node never changed by this script has no lock file,
  # and its first change creates it).
  take_node_lock
fi

# Runs a command that changes the node, or only prints it with --dry-run.
# The run's locks (fds 7 to 9) stay with this script, not with what it runs.
change() {
  if ((dry_run)); then
    printf 'would run: %s\n' "$*"
  else
    take_node_lock
    printf '+ %s\n' "$*"
    "$@" 7>&- 8>&- 9>&-
  fi
}

# apt-get, waiting (bounded) for apt's lock rather than failing at once when
# unattended-upgrades or another apt holds it.
apt_get() { change apt-get -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" "$@"; }

# apt-mark and dpkg fail at once while another apt or dpkg holds the lock
# (DPkg::Lock::Timeout does not reach them): run them again, within the same
# bound, as long as the lock is why they failed.
locked_change() {
  if ((dry_run)); then
    printf 'would run: %s\n' "$*"
    return 0
  fi
  take_node_lock
  printf '+ %s\n' "$*"
  local started=$SECONDS said=0 status output
  output=$(mktemp)
  while :; do
    status=0
    "$@" >"$output" 2>&1 7>&- 8>&- 9>&- || status=$?
    if ((status != 0)) && grep -q 'lock' "$output"; then
      ((said)) || step "waiting up to ${APT_LOCK_TIMEOUT}s for apt's lock (another apt or dpkg is running)"
      said=1
      if ((SECONDS - started < APT_LOCK_TIMEOUT)); then
        sleep 1
        continue
      fi
    fi
    if ((status == 0)); then cat "$output"; else cat "$output" >&2; fi
    rm -f "$output"
    return "$status"
  done
}

# dpkg killed mid-install leaves work in its updates folder, and apt refuses
# to install anything until `dpkg --configure -a` finishes it.
finish_interrupted_dpkg() {
  if [[ -n $(ls -A "$ROOT/var/lib/dpkg/updates" 2>/dev/null) || -n $(dpkg --audit 2>/dev/null) ]]; then
    step "finishing an interrupted dpkg run (dpkg --configure -a)"
    locked_change dpkg --configure -a
  fi
}

# ---- repository rewrite (before a minor upgrade) ---------------------------
if [[ -n $repo_minor ]]; then
  SOURCES=""
  for candidate in "$SOURCES_DIR/kubernetes.list" "$SOURCES_DIR/kubernetes.sources" "$SOURCES_DIR"/*.list \
    "$SOURCES_DIR"/*.sources; do
    if [[ -f $candidate ]] && grep -q '/core:/stable:/v[0-9]*\.[0-9]*/deb/' "$candidate"; then
      SOURCES=$candidate
      break
    fi
  done
  [[ -n $SOURCES ]] || {
    echo "update_k8s.sh: no apt source in $SOURCES_DIR names a pkgs.k8s.io repository (/core:/stable:/vX.Y/deb/)" >&2
    exit 1
  }
  if grep -q "/core:/stable:/v$repo_minor/deb/" "$SOURCES"; then
    step "apt source already at v$repo_minor"
  else
    step "pointing the apt source at v$repo_minor"
    change sed -i "s|/core:/stable:/v[0-9]*\.[0-9]*/deb/|/core:/stable:/v$repo_minor/deb/|" "$SOURCES"
  fi
  step "refreshing the package lists"
  apt_get update -q
  exit 0
fi

installed() { dpkg-query -W --showformat='${Version}' "$1" 2>/dev/null || true; }

# Whether apt holds the package. apt-mark's whole answer is read first:
# piped into `grep -q` under pipefail, apt-mark died of SIGPIPE whenever grep
# matched before apt-mark had written its last line, and a held package
# looked unheld (held again, or, for containerd, not unheld before its install).
is_held() {
  local holds
  holds=$(apt-mark showhold)
  grep -qxF "$1" <<<"$holds"
}

# ---- MicroK8s: snap refresh, followed; snap revert ---------------------------
# How long to wait out another snap change (exit 10) and a refresh's change.
SNAP_CONFLICT_TIMEOUT=${K8S_UPGRADE_SNAP_CONFLICT_TIMEOUT:-600}
SNAP_CHANGE_TIMEOUT=${K8S_UPGRADE_SNAP_CHANGE_TIMEOUT:-1200}
SNAP_POLL=${K8S_UPGRADE_SNAP_POLL:-2}

# Column $2 of `snap list NAME` for the snap (2 version, 4 tracking).
snap_field() { snap list "$1" 2>/dev/null | awk -v s="$1" -v f="$2" '$1 == s { print $f; exit }'; }

# The snap must now run $release and track $channel.
snap_verify() {
  ((!dry_run)) || return 0
  local version tracking
  version=$(snap_field "$1" 2)
  tracking=$(snap_field "$1" 4)
  if [[ ${version#v} != "$release" || $tracking != "$channel" ]]; then
    echo "update_k8s.sh: $1 runs ${version:-?} tracking ${tracking:-?}, not v$release tracking $channel" >&2
    exit 1
  fi
}

# Follows snapd's change $1 until it is Done; Error, Undone or Hold fail.
snap_follow() {
  local id=$1 started=$SECONDS status
  step "following snap change $id"
  while :; do
    status=$(snap changes "$snap" 2>/dev/null | awk -v id="$id" '$1 == id { print $2; exit }')
    case $status in
      Done) return 0 ;;
      Error | Undone | Hold | Abort)
        echo "update_k8s.sh: snap change $id ended $status (snapd undid what it had done):" >&2
        snap tasks "$id" >&2 || true
        exit 1
        ;;
    esac
    if ((SECONDS - started >= SNAP_CHANGE_TIMEOUT)); then
      echo "update_k8s.sh: snap change $id is still ${status:-unlisted} after ${SNAP_CHANGE_TIMEOUT}s" >&2
      exit 1
    fi
    sleep "$SNAP_POLL"
  done
}

# How long `microk8s dbctl restore` waits for the API (its kine socket)
# after the revert restarted MicroK8s.
DBCTL_API_TIMEOUT=${K8S_UPGRADE_DBCTL_API_TIMEOUT:-300}

# `microk8s dbctl restore` reads the folder named after the archive (its
# name without .tar.gz), as `dbctl backup -o NAME` wrote it.
check_dbctl_archive() {
  local name listing
  name=${restore_snapshot##*/}
  name=${name%.tar.gz}
  listing=$(tar -tzf "$restore_snapshot" 2>&1) ||
    fail "the backup does not read as a gzipped tar archive: ${listing:0:300}; nothing was changed"
  awk -v n="$name/" 'index($0, n) == 1 || index($0, "./" n) == 1 { found = 1 } END { exit !found }' <<<"$listing" ||
    fail "the backup holds no folder $name, which microk8s dbctl restore reads; nothing was changed"
  step "the backup lists $(awk -v n="$name/" 'index($0, n) == 1 || index($0, "./" n) == 1' <<<"$listing" | grep -c .) entries under $name/"
}

if [[ -n $snap_revert ]]; then
  snap=$snap_revert
  [[ -n $(snap_field "$snap" 2) ]] || { echo "update_k8s.sh: the $snap snap is not installed" >&2; exit 1; }
  current=$(snap_field "$snap" 2)
  if [[ -n $restore_snapshot ]]; then
    if [[ -f $RESTORED_MARK && ${current#v} == "$release" && $(snap_field "$snap" 4) == "$channel" ]]; then
      step "already restored from $restore_snapshot and at $release"
      exit 0
    fi
    if [[ ! -f $RESTORED_MARK ]]; then
      check_snapshot
      check_dbctl_archive
      command -v microk8s >/dev/null || fail "the microk8s command is not on PATH; nothing was changed"
    fi
  fi
  if [[ ${current#v} == "$release" ]]; then
    step "$snap already runs $release"
  else
    step "reverting $snap ($current) to its previous revision"
    change snap revert "$snap"
  fi
  change snap refresh --hold "$snap"
  change snap switch "$snap" --channel="$channel"
  snap_verify "$snap"
  if [[ -n $restore_snapshot && -f $RESTORED_MARK ]]; then
    step "the datastore was already restored from $restore_snapshot"
  elif [[ -n $restore_snapshot ]]; then
    step "restoring the datastore from $restore_snapshot (microk8s dbctl restore, once the API answers)"
    if ((dry_run)); then
      printf 'would run: %s\n' "microk8s dbctl restore $restore_snapshot"
    else
      take_node_lock
      started=$SECONDS
      change microk8s status --wait-ready --timeout "$DBCTL_API_TIMEOUT" ||
        fail "MicroK8s is not ready ${DBCTL_API_TIMEOUT}s after the revert; the snap is at $release, its datastore as snapd's revert left it"
      while :; do
        printf '+ %s\n' "microk8s dbctl restore $restore_snapshot"
        status=0
        microk8s dbctl restore "$restore_snapshot" 7>&- 8>&- 9>&- || status=$?
        # 10: no kine socket yet; 3: k8s-dqlite's migrator could not write
        # (still starting after the revert). Both are tried again in time.
        if ! (((status == 10 || status == 3) && SECONDS - started < DBCTL_API_TIMEOUT)); then break; fi
        sleep "$SNAP_POLL"
      done
      ((status == 0)) ||
        fail "microk8s dbctl restore exited $status; the snap is at $release, its datastore as snapd's revert left it"
      echo "$restore_snapshot" >"$RESTORED_MARK"
    fi
  fi
  if ((dry_run)); then
    step "dry run: nothing was changed"
  elif [[ -n $restore_snapshot ]]; then
    step "done: $snap reverted to $release, held on $channel, its datastore restored from $restore_snapshot"
  else
    step "done: $snap reverted to $release, held on $channel"
  fi
  exit 0
fi

if [[ -n $snap ]]; then
  current=$(snap_field "$snap" 2)
  [[ -n $current ]] || { echo "update_k8s.sh: the $snap snap is not installed" >&2; exit 1; }
  if [[ ${current#v} == "$release" && $(snap_field "$snap" 4) == "$channel" ]]; then
    step "$snap already at $release ($channel)"
    exit 0
  fi
  step "refreshing $snap ($current) to $channel"
  if ((dry_run)); then
    printf 'would run: %s\n' "snap refresh $snap --channel=$channel --no-wait"
    step "dry run: nothing was changed"
    exit 0
  fi
  take_node_lock
  started=$SECONDS said=0
  while :; do
    printf '+ %s\n' "snap refresh $snap --channel=$channel --no-wait"
    status=0
    output=$(snap refresh "$snap" --channel="$channel" --no-wait 2>&1 7>&- 8>&- 9>&-) || status=$?
    if ((status == 10)) && ((SECONDS - started < SNAP_CONFLICT_TIMEOUT)); then
      ((said)) || step "another snap change is in progress ($output); waiting up to ${SNAP_CONFLICT_TIMEOUT}s"
      said=1
      sleep "$SNAP_POLL"
      continue
    fi
    break
  done
  if ((status != 0)); then
    echo "update_k8s.sh: snap refresh exited $status: $output" >&2
    exit 1
  fi
  if [[ $output == *"has no updates available"* ]]; then
    step "snapd has no update for $snap on $channel"
  else
    id=$(printf '%s\n' "$output" | tail -n 1 | tr -d '[:space:]')
    [[ $id =~ ^[0-9]+$ ]] || { echo "update_k8s.sh: snap refresh --no-wait printed no change ID: $output" >&2; exit 1; }
    snap_follow "$id"
  fi
  change snap refresh --hold "$snap"
  snap_verify "$snap"
  step "done: $snap at $release ($channel)"
  exit 0
fi

# ---- K3s: the binary swapped as the k3s-upgrade image does it -----------------
# The binary the last swap replaced, kept for a revert or a rollback (one
# release at a time: a k3s binary is about 70 MB).
K3S_KEPT="$STATE_DIR/k3s-kept"
K3S_PENDING="$STATE_DIR/k3s-restart-pending"
K3S_DOWNLOAD="$STATE_DIR/k3s-download"
K3S_DOWNLOAD_TIMEOUT=${K8S_UPGRADE_K3S_DOWNLOAD_TIMEOUT:-600}

# Where the install script put k3s: /usr/local/bin, or /opt/bin when
# /usr/local/bin is read-only.
k3s_binary() {
  local candidate
  for candidate in "$ROOT/usr/local/bin/k3s" "$ROOT/opt/bin/k3s"; do
    if [[ -x $candidate ]]; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  echo "update_k8s.sh: k3s is not installed here (neither /usr/local/bin/k3s nor /opt/bin/k3s)" >&2
  exit 1
}

# The release a k3s binary says it is: `k3s version v1.34.5+k3s1 (5a1b2c3d)`
# gives 1.34.5+k3s1; nothing when it says something else.
k3s_version() {
  local said
  said=$("$1" --version 2>/dev/null) || true
  awk 'NR == 1 && $1 == "k3s" && $2 == "version" && $3 ~ /^v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+$/ {
    print substr($3, 2) }' <<<"$said"
}

# A K3s release as one number that orders releases: 1.34.5+k3s2 after
# 1.34.5+k3s1, after 1.34.4+k3s9.
k3s_order() {
  local major minor patch build
  IFS=. read -r major minor patch build <<<"${1/+k3s/.}"
  echo $((10#$major * 1000000000000000 + 10#$minor * 10000000000 + 10#$patch * 100000 + 10#$build))
}

# Puts $1 (a verified k3s binary) in place of $2, the installed one: a copy
# beside it with its owner, mode and SELinux context, renamed over it, so
# that the running k3s keeps the file it started from.
k3s_install() {
  local new=$1 bin=$2
  change cp -- "$new" "$bin.k8s-upgrade-new"
  change chown --reference="$bin" "$bin.k8s-upgrade-new"
  change chmod --reference="$bin" "$bin.k8s-upgrade-new"
  if command -v getenforce >/dev/null 2>&1 && [[ $(getenforce 2>/dev/null) != Disabled ]]; then
    change chcon --reference="$bin" "$bin.k8s-upgrade-new"
  fi
  change mv -f -- "$bin.k8s-upgrade-new" "$bin"
}

# Restarts the service; the orchestrator then judges the node (Ready, its
# kubelet at the release) through the API.
k3s_restart() {
  local service=$1
  step "restarting $service"
  change systemctl restart "$service"
  ((dry_run)) || rm -f "$K3S_PENDING"
}

# ---- K3s: the single server's datastore restored (--restore-snapshot) --------
# The job's archive (K3s.snapshotSave): ./datastore (etcd or sqlite), the
# copy (./etcd-snapshot or ./state.db) and ./token.
K3S_SERVER="$ROOT/var/lib/rancher/k3s/server"
K3S_RESTORE="$STATE_DIR/k3s-restore"
K3S_RESET_TIMEOUT=${K8S_UPGRADE_K3S_RESET_TIMEOUT:-600}

if [[ -n $k3s_revert && -n $restore_snapshot ]]; then
  bin=$(k3s_binary)
  current=$(k3s_version "$bin")
  [[ -n $current ]] || fail "$bin --version names no K3s release; nothing was changed"
  if [[ -f $RESTORED_MARK && $current == "$release" ]] && systemctl is-active --quiet k3s 2>/dev/null; then
    step "already restored from $restore_snapshot and at $release"
    exit 0
  fi
  # A restore cut off mid-way left its new database beside the old one, or
  # k3s' reset moved etcd's folder aside: the same datastore all the same.
  if [[ -d $K3S_SERVER/db/etcd ]] || compgen -G "$K3S_SERVER/db/etcd-old-*" >/dev/null; then
    kind=etcd
  elif [[ -e $K3S_SERVER/db/state.db || -e $K3S_SERVER/db/state.db.k8s-upgrade-restoring ]]; then
    kind=sqlite
  else
    fail "neither embedded etcd ($K3S_SERVER/db/etcd) nor SQLite ($K3S_SERVER/db/state.db) on this server; nothing was changed"
  fi
  kept="$K3S_KEPT/k3s-$release"
  if [[ $current != "$release" ]] && [[ ! -x $kept || $(k3s_version "$kept") != "$release" ]]; then
    fail "no kept k3s $release on this node to put back (kept: $(find "$K3S_KEPT" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null)); nothing was changed"
  fi
  if [[ ! -f $RESTORED_MARK ]]; then
    check_snapshot
    listing=$(tar -tzf "$restore_snapshot" 2>&1) ||
      fail "the backup does not read as a gzipped tar archive: ${listing:0:300}; nothing was changed"
    copy=state.db
    [[ $kind == sqlite ]] || copy=etcd-snapshot
    for entry in datastore token "$copy"; do
      grep -qxF -e "$entry" -e "./$entry" <<<"$listing" || fail "the backup holds no $entry; nothing was changed"
    done
    held=$(tar -xzOf "$restore_snapshot" ./datastore 2>/dev/null || tar -xzOf "$restore_snapshot" datastore)
    [[ $held == "$kind" ]] || fail "the backup holds a $held datastore and this server runs $kind; nothing was changed"
    # K3s refuses a restore without the token the datastore was written with.
    token=$(tar -xzOf "$restore_snapshot" ./token 2>/dev/null || tar -xzOf "$restore_snapshot" token)
    [[ -f $K3S_SERVER/token && $token == "$(cat "$K3S_SERVER/token")" ]] ||
      fail "the backup's server token is not this server's ($K3S_SERVER/token); nothing was changed"
    step "the backup holds the $kind datastore and this server's token"
  fi
  step "stopping k3s"
  change systemctl stop k3s
  # From here a failure leaves k3s stopped: say so, whatever fails.
  left_behind="k3s is stopped on this server: run the same command again to finish the restore (it goes on where it stopped), or start k3s as it is (systemctl start k3s)"
  set -E
  trap 'echo "update_k8s.sh: $left_behind" >&2' ERR
  if [[ $current != "$release" ]]; then
    step "putting back the kept k3s $release in place of $current"
    k3s_install "$kept" "$bin"
  fi
  if [[ -f $RESTORED_MARK ]]; then
    step "the datastore was already restored from $restore_snapshot"
  else
    change rm -rf "$K3S_RESTORE"
    change mkdir -p "$K3S_RESTORE"
    change tar -xzf "$restore_snapshot" -C "$K3S_RESTORE"
    if [[ $kind == sqlite ]]; then
      # One folder per restore: a run cut off and started again finds the
      # files it already put there, and does not move its own copy aside.
      aside="$K3S_SERVER/db/before-restore-${restore_snapshot##*/}"
      step "restoring the SQLite datastore from $restore_snapshot (the old files kept in ${aside#"$ROOT"})"
      change cp "$K3S_RESTORE/state.db" "$K3S_SERVER/db/state.db.k8s-upgrade-restoring"
      change mkdir -p "$aside"
      for name in state.db state.db-wal state.db-shm; do
        [[ -e $K3S_SERVER/db/$name ]] || continue
        if [[ -e $aside/$name ]]; then
          change rm -f "$K3S_SERVER/db/$name" # an earlier run of this restore's copy
        else
          change mv "$K3S_SERVER/db/$name" "$aside/"
        fi
      done
      change mv "$K3S_SERVER/db/state.db.k8s-upgrade-restoring" "$K3S_SERVER/db/state.db"
    else
      step "restoring embedded etcd from $restore_snapshot (k3s server --cluster-reset)"
      change timeout "$K3S_RESET_TIMEOUT" "$bin" server --cluster-reset \
        --cluster-reset-restore-path="$K3S_RESTORE/etcd-snapshot" --token-file "$K3S_SERVER/token"
    fi
    ((dry_run)) || echo "$restore_snapshot" >"$RESTORED_MARK"
    change rm -rf "$K3S_RESTORE"
  fi
  step "starting k3s"
  change systemctl start k3s
  trap - ERR
  set +E
  left_behind=""
  ((dry_run)) || rm -f "$K3S_PENDING"
  if ((dry_run)); then
    step "dry run: nothing was changed"
  else
    step "done: k3s at $release, its $kind datastore restored from $restore_snapshot"
  fi
  exit 0
fi

if [[ -n $k3s || -n $k3s_revert ]]; then
  service="k3s"
  [[ ${k3s:-$k3s_revert} == server ]] || service="k3s-agent"
  bin=$(k3s_binary)
  current=$(k3s_version "$bin")
  [[ -n $current ]] || { echo "update_k8s.sh: $bin --version names no K3s release" >&2; exit 1; }
  if [[ $current == "$release" ]]; then
    if [[ -f $K3S_PENDING ]]; then
      step "k3s already at $release; an earlier run stopped before restarting $service"
    elif ! systemctl is-active --quiet "$service" 2>/dev/null; then
      step "k3s already at $release; $service is not running"
    else
      step "k3s already at $release"
      exit 0
    fi
    k3s_restart "$service"
    if ((dry_run)); then step "dry run: nothing was changed"; else step "done: $service at $release"; fi
    exit 0
  fi
fi

if [[ -n $k3s_revert ]]; then
  kept="$K3S_KEPT/k3s-$release"
  if [[ ! -x $kept || $(k3s_version "$kept") != "$release" ]]; then
    echo "update_k8s.sh: no kept k3s $release on this node to put back (kept: $(find "$K3S_KEPT" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null))" >&2
    exit 1
  fi
  step "putting back the kept k3s $release in place of $current"
  if ((!dry_run)); then take_node_lock && : >"$K3S_PENDING"; fi
  k3s_install "$kept" "$bin"
  k3s_restart "$service"
  if ((dry_run)); then step "dry run: nothing was changed"; else step "done: $service reverted to $release"; fi
  exit 0
fi

if [[ -n $k3s ]]; then
  if (($(k3s_order "$release") < $(k3s_order "$current"))); then
    echo "update_k8s.sh: k3s $current runs here, newer than $release: a downgrade is refused" \
      "(k3s-revert puts back the binary the last upgrade replaced)" >&2
    exit 1
  fi
  case $(uname -m) in
    x86_64 | amd64) arch=amd64 suffix="" ;;
    aarch64 | arm64) arch=arm64 suffix=-arm64 ;;
    s390x) arch=s390x suffix=-s390x ;;
    arm*) arch=arm suffix=-armhf ;;
    *) echo "update_k8s.sh: K3s publishes no binary for $(uname -m)" >&2; exit 1 ;;
  esac
  url="${artifacts%/}/v$release"
  step "upgrading k3s $current to $release ($arch) from $url"
  if ((dry_run)); then
    printf 'would run: %s\n' "curl -fsSL $url/sha256sum-$arch.txt $url/k3s$suffix (then check the sha256)" \
      "install it as $bin, keeping $current under $K3S_KEPT" "systemctl restart $service"
    step "dry run: nothing was changed"
    exit 0
  fi
  take_node_lock
  rm -rf "$K3S_DOWNLOAD"
  mkdir -p "$K3S_DOWNLOAD"
  fetch() {
    printf '+ curl -fsSL -o %s %s\n' "$2" "$1"
    curl -fsSL --retry 3 --connect-timeout 30 --max-time "$K3S_DOWNLOAD_TIMEOUT" -o "$2" "$1" 7>&- 8>&- 9>&- ||
      { echo "update_k8s.sh: could not fetch $1; nothing was installed" >&2; exit 1; }
  }
  fetch "$url/sha256sum-$arch.txt" "$K3S_DOWNLOAD/sha256sum.txt"
  expected=$(awk -v f="k3s$suffix" '$2 == f || $2 == "*" f { print $1; exit }' "$K3S_DOWNLOAD/sha256sum.txt")
  [[ $expected =~ ^[0-9a-f]{64}$ ]] ||
    { echo "update_k8s.sh: $url/sha256sum-$arch.txt lists no sha256 for k3s$suffix; nothing was installed" >&2; exit 1; }
  fetch "$url/k3s$suffix" "$K3S_DOWNLOAD/k3s"
  actual=$(sha256sum "$K3S_DOWNLOAD/k3s")
  actual=${actual%% *}
  if [[ $actual != "$expected" ]]; then
    echo "update_k8s.sh: $url/k3s$suffix has sha256 $actual, but sha256sum-$arch.txt says $expected;" \
      "nothing was installed" >&2
    rm -rf "$K3S_DOWNLOAD"
    exit 1
  fi
  echo "sha256 $actual verified"
  chmod 755 "$K3S_DOWNLOAD/k3s"
  fetched=$(k3s_version "$K3S_DOWNLOAD/k3s")
  if [[ $fetched != "$release" ]]; then
    echo "update_k8s.sh: the binary fetched for $release says it is ${fetched:-no K3s release}; nothing was installed" >&2
    rm -rf "$K3S_DOWNLOAD"
    exit 1
  fi
  step "keeping k3s $current under $K3S_KEPT"
  mkdir -p "$K3S_KEPT"
  change cp -p -- "$bin" "$K3S_KEPT/k3s-$current.new"
  change mv -f -- "$K3S_KEPT/k3s-$current.new" "$K3S_KEPT/k3s-$current"
  find "$K3S_KEPT" -mindepth 1 -maxdepth 1 ! -name "k3s-$current" -exec rm -f {} +
  : >"$K3S_PENDING"
  step "installing k3s $release as $bin"
  k3s_install "$K3S_DOWNLOAD/k3s" "$bin"
  rm -rf "$K3S_DOWNLOAD"
  k3s_restart "$service"
  step "done: $service at $release"
  exit 0
fi

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
  finish_interrupted_dpkg
  if [[ $(installed "$package") == "$wanted" ]]; then
    if [[ ! -f $CONTAINERD_PENDING ]]; then
      step "containerd already at $containerd"
      exit 0
    fi
    step "$package already at $wanted; an earlier run stopped before restarting containerd"
  else
    held=0
    if is_held "$package"; then held=1; fi
    if ((!dry_run)); then take_node_lock && : >"$CONTAINERD_PENDING"; fi
    step "installing $package $wanted"
    if ((held)); then locked_change apt-mark unhold "$package"; fi
    apt_get install -y -q "$package=$wanted"
    if ((held)); then locked_change apt-mark hold "$package"; fi
  fi
  step "restarting containerd and kubelet"
  change systemctl restart containerd
  change systemctl restart kubelet
  ((dry_run)) || rm -f "$CONTAINERD_PENDING"
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
# A rollback installs older packages, which apt refuses without this.
downgrade=()
if ((rollback)); then
  kubelet_now=$(installed kubelet)
  if [[ -n $kubelet_now && $kubelet_now != "$revision" &&
    $(printf '%s\n' "$kubelet_now" "$revision" | sort -V | tail -n 1) == "$revision" ]]; then
    echo "update_k8s.sh: kubelet is at $kubelet_now, older than $revision: --rollback only goes back;" \
      "nothing was changed" >&2
    exit 1
  fi
  downgrade=(--allow-downgrades)
fi
finish_interrupted_dpkg

changed=0

# Installs exact versions (pkg=version) of held packages: the hold is lifted
# for the install and set again whether the install succeeded or not, so a
# failed install (a refused downgrade, a mirror that fails) never leaves a
# package for unattended-upgrades to move.
install_held() {
  local packages=("${@%%=*}") status=0
  locked_change apt-mark unhold "${packages[@]}"
  apt_get install -y -q ${downgrade[@]+"${downgrade[@]}"} "$@" || status=$?
  locked_change apt-mark hold "${packages[@]}"
  return "$status"
}

# Every change below ends in a kubelet restart; say so on disk first.
restart_pending() {
  if ((!dry_run)); then
    take_node_lock
    mkdir -p "${RESTART_PENDING%/*}"
    : >"$RESTART_PENDING"
  fi
}

apiserver_at_target() {
  grep -q "image: .*kube-apiserver:v$release\$" "$MANIFESTS/kube-apiserver.yaml" 2>/dev/null
}

# ---- control plane restore (--restore-snapshot) ----------------------------
if [[ -n $restore_snapshot ]]; then
  STOPPED="$ROOT/etc/kubernetes/manifests.k8s-upgrade-stopped"
  kubelet_now=$(installed kubelet)
  if [[ -n $kubelet_now && $kubelet_now != "$revision" &&
    $(printf '%s\n' "$kubelet_now" "$revision" | sort -V | tail -n 1) == "$revision" ]]; then
    fail "kubelet is at $kubelet_now, older than $revision: a restore only goes back; nothing was changed"
  fi
  # Done before: the packages, the API server and the restore all at the older release.
  if [[ -f $RESTORED_MARK && ! -d $STOPPED && $(installed kubeadm) == "$revision" && $kubelet_now == "$revision" ]] &&
    apiserver_at_target; then
    step "already restored from $restore_snapshot and at $release"
    exit 0
  fi
  # Everything is checked before the first change.
  manifest="$MANIFESTS/etcd.yaml"
  [[ -f $manifest ]] || manifest="$STOPPED/etcd.yaml"
  [[ -f $manifest ]] ||
    fail "no etcd static pod manifest in $MANIFESTS: not a control plane with a stacked etcd; nothing was changed"
  flag() { sed -n "s/^[[:space:]]*- --$1=//p" "$manifest" | head -n 1; }
  member=$(flag name) peer=$(flag initial-advertise-peer-urls) data_dir=$(flag data-dir)
  [[ -n $member && -n $peer && -n $data_dir ]] ||
    fail "$manifest names no --name, --initial-advertise-peer-urls or --data-dir; nothing was changed"
  data="$ROOT$data_dir"
  [[ -f $restore_snapshot ]] ||
    fail "the snapshot $restore_snapshot is not on this node (the orchestrator keeps a copy: see the runbook's rollback section); nothing was changed"
  if command -v etcdutl >/dev/null; then
    restore_tool=(etcdutl)
  elif command -v etcdctl >/dev/null; then
    restore_tool=(env ETCDCTL_API=3 etcdctl)
  else
    fail "neither etcdutl nor etcdctl is installed; nothing was changed"
  fi
  command -v crictl >/dev/null || fail "crictl is not installed (cri-tools), so the static pods' end cannot be seen; nothing was changed"
  if [[ ! -f $RESTORED_MARK ]]; then
    check_snapshot
    status=$("${restore_tool[@]}" snapshot status "$restore_snapshot" -w table 2>&1) ||
      fail "the snapshot does not read: $status; nothing was changed"
    step "snapshot status: $(printf '%s\n' "$status" | tail -n 2 | head -n 1)"
  fi
  backup=""
  while IFS= read -r candidate; do
    if grep -q "image: .*kube-apiserver:v$release\$" "$candidate/kube-apiserver.yaml" 2>/dev/null; then
      backup=$candidate
      break
    fi
  done < <(find "$ROOT/etc/kubernetes/tmp" -mindepth 1 -maxdepth 1 -type d -name 'kubeadm-backup-manifests-*' \
    -newer "$restore_snapshot" -printf '%T@ %p\n' 2>/dev/null | sort -n | cut -d' ' -f2-)
  [[ -n $backup ]] ||
    fail "no kubeadm backup of the v$release manifests newer than the snapshot under /etc/kubernetes/tmp; nothing was changed"
  step "the v$release manifests: ${backup#"$ROOT"}"

  restart_pending
  if compgen -G "$MANIFESTS/*.yaml" >/dev/null; then
    step "stopping the control plane's static pods (their manifests moved to ${STOPPED#"$ROOT"})"
    change mkdir -p "$STOPPED"
    for file in "$MANIFESTS"/*.yaml; do change mv "$file" "$STOPPED/"; done
  fi
  if ((!dry_run)); then
    step "waiting up to 120 s for etcd and the API server to stop"
    waited=0
    while [[ -n $(crictl ps -q --name '^etcd$') || -n $(crictl ps -q --name '^kube-apiserver$') ]]; do
      ((waited < 1200)) || fail "etcd or the API server still runs 120 s after its manifest went"
      sleep 0.1
      waited=$((waited + 1))
    done
  fi
  if [[ -f $RESTORED_MARK ]]; then
    step "etcd already restored from $restore_snapshot"
  else
    step "restoring etcd member $member from $restore_snapshot"
    change rm -rf "$data.k8s-upgrade-restoring"
    change "${restore_tool[@]}" snapshot restore "$restore_snapshot" --data-dir "$data.k8s-upgrade-restoring" \
      --name "$member" --initial-cluster "$member=$peer" --initial-advertise-peer-urls "$peer"
    if [[ -d $data ]]; then change mv "$data" "$data.before-restore-$(date +%Y%m%d-%H%M%S)"; fi
    change mv "$data.k8s-upgrade-restoring" "$data"
    ((dry_run)) || echo "$restore_snapshot" >"$RESTORED_MARK"
  fi
  downgrade=(--allow-downgrades)
  if [[ $(installed kubeadm) != "$revision" || $(installed kubelet) != "$revision" ||
    $(installed kubectl) != "$revision" ]]; then
    step "installing kubeadm, kubelet and kubectl $revision"
    install_held "kubeadm=$revision" "kubelet=$revision" "kubectl=$revision"
  fi
  for pkg in "${PACKAGES[@]}"; do
    if ! is_held "$pkg"; then locked_change apt-mark hold "$pkg"; fi
  done
  step "putting back the v$release manifests"
  for file in "$backup"/*.yaml; do change cp "$file" "$MANIFESTS/"; done
  if [[ -d $STOPPED ]]; then
    for file in "$STOPPED"/*.yaml; do
      [[ -e $file && ! -e $MANIFESTS/${file##*/} ]] || continue
      change mv "$file" "$MANIFESTS/"
    done
    change mv "$STOPPED" "$ROOT/etc/kubernetes/manifests.before-restore-$(date +%Y%m%d-%H%M%S)"
  fi
  step "restarting kubelet"
  change systemctl daemon-reload
  change systemctl restart kubelet
  ((dry_run)) || rm -f "$RESTART_PENDING"
  if ((dry_run)); then
    step "dry run: nothing was changed"
    exit 0
  fi
  step "waiting up to 120 s for etcd to answer"
  waited=0
  until ETCDCTL_API=3 etcdctl --endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt \
    --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key \
    --command-timeout 2s endpoint health >/dev/null 2>&1; do
    ((waited < 240)) || fail "etcd does not answer 120 s after the restore; its log: crictl logs \$(crictl ps -aq --name '^etcd\$' | head -n 1)"
    sleep 0.5
    waited=$((waited + 1))
  done
  step "done: master at $release, etcd restored from $restore_snapshot"
  exit 0
fi

if [[ $(installed kubeadm) != "$revision" ]]; then
  restart_pending
  step "installing kubeadm $revision"
  install_held "kubeadm=$revision"
  changed=1
else
  step "kubeadm already at $revision"
fi

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
    if ((rollback)); then
      step "kubelet configuration left as it is (a rollback runs no kubeadm upgrade node)"
    elif [[ $(installed kubelet) != "$revision" ]]; then
      restart_pending
      step "upgrading the kubelet configuration (kubeadm upgrade node)"
      change kubeadm upgrade node
      changed=1
    else
      step "kubelet configuration already upgraded (kubelet at $revision)"
    fi
    ;;
esac

if [[ $(installed kubelet) != "$revision" || $(installed kubectl) != "$revision" ]]; then
  restart_pending
  step "installing kubelet and kubectl $revision"
  install_held "kubelet=$revision" "kubectl=$revision"
  changed=1
else
  step "kubelet and kubectl already at $revision"
fi

for pkg in "${PACKAGES[@]}"; do
  if ! is_held "$pkg"; then
    step "holding $pkg"
    locked_change apt-mark hold "$pkg"
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
