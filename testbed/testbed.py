#!/usr/bin/env python3
"""The test bed: a simulated cluster whose parts are real.

  testbed.py up   [--dir DIR] [--scenario default|ha|microk8s|microk8s-ha|k3s|k3s-etcd|k3s-ha|synthetic-N[-pods-M]|FILE.json]
                  [--running-version X.Y.Z]
                  [--master-containerd X.Y.Z] [--orchestrator] [--soak SECONDS]
                  [--orchestrator-node NODE] [--orchestrator-grace S] [--orchestrator-restart-delay S]
                  [--orchestrator-volume shared|node-local] [--api-outage SECONDS] [--suc-crd]
                  [--real-apt-workers]
                                                        start everything, write DIR/env and DIR/kubeconfig
  testbed.py down [--dir DIR]                           stop everything started from DIR, remove DIR

Parts: the API simulator (k8s-cluster-sim, HTTPS + token), reached by
clients through a proxy that refuses connections for --api-outage seconds
whenever kubeadm restarts a control plane's API server (testbed/api_proxy.py);
one real sshd per
node on its own loopback port with its own host key and a node root whose
PATH holds the fake node tools; a package repository in the pkgs.k8s.io
shape; a real etcd with client-certificate TLS in the kubeadm layout of the
first control plane; a real Prometheus scraping a real Pushgateway every
second with the gate rules; a webhook receiver standing in for Slack; with
--orchestrator, `k8s-upgrade serve` configured for all of it and running as
a pod of the simulated cluster (testbed/orchestrator_pod.py; its arguments
are in DIR/orchestrator.args either way, for tests that run it themselves).
Every process's pid is kept in DIR/pids so that `down` leaves nothing
behind, even after a crashed test.

With --real-apt-workers (default and ha scenarios, running 1.34.3), every
worker is a Debian root with the real apt, dpkg and apt-mark instead of the
fakes (testbed/real_apt.py: a copy of a worker root cached in .build, its
sshd's sessions chrooted into it), the bed's repository serves real signed
packages for 1.34 and 1.35, and testbed/kubelet_agent.py reports each
worker's kubelet and containerd to the simulator when the root's
systemctl starts them.

The MicroK8s scenarios (microk8s: 1 control plane + 2 workers; microk8s-ha:
3 dqlite voters + 1 worker) have no etcd and no apt packages in use: each
node holds the microk8s snap's state (testbed/node-tools/snap: revision,
tracking channel, hold, changes, what the store offers), the snap's data
folder var/snap/microk8s/<rev> with current pointing at it, and the control
planes dqlite's cluster files; the cluster's live dqlite membership and
leader are DIR/dqlite/cluster.json and DIR/dqlite/leader
(testbed/node-tools/dqlite). Their sshd logs in through
testbed/node-tools/_node_login, which maps /snap and /var/snap paths into
the node's root; the orchestrator runs with --distribution microk8s.

The K3s scenarios (k3s: 1 server on SQLite + 2 agents; k3s-etcd: 1 server
with embedded etcd (--cluster-init) + 2 agents; k3s-ha: 3 servers
with embedded etcd, the bed's real members in K3s' certificate layout under
var/lib/rancher/k3s/server/tls/etcd, + 2 agents, and the API serving K3s'
ETCDSnapshotFile records, which the bed's `k3s etcd-snapshot save` writes) have no apt packages in
use: every node runs the k3s binary of its release at
usr/local/bin/k3s under its root (a stand-in written by
testbed/k3s_artifacts.py, whose restart through the bed's systemctl
reports its release as the kubelet's), the servers hold the cluster's token and, on k3s, K3s' SQLite
database (a real one, kept open in WAL mode and written to every half
second by testbed/k3s_kine.py, as k3s' kine does) and token under
var/lib/rancher/k3s/server; the
repository server also serves the channel server's list
(/v1-release/channels) and the releases in GitHub's layout (/k3s/v<release>/).
Their sshd logs in through testbed/node-tools/_node_login, which maps
/var/lib/rancher/k3s paths into the node's root; the orchestrator runs with
--distribution k3s.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from serving import free_port

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
BED_LOGS = None  # the bed's log folder, once known
TOOLS = REPO_ROOT / "testbed" / "node-tools"
RUNNING = "1.34.3"  # the default; --running-version changes it
# The releases each minor's repository offers; 1.34.4 carries a -2.1 revision.
RELEASES = {
    "1.33": [f"1.33.{p}" for p in range(0, 8)],
    "1.34": [f"1.34.{p}" for p in range(0, 6)],
    "1.35": [f"1.35.{p}" for p in range(0, 3)],
}
SCENARIOS = {
    "default": (["master"], [f"worker-{i}" for i in range(1, 5)]),
    "ha": (["cp-1", "cp-2", "cp-3"], [f"worker-{i}" for i in range(1, 4)]),
    "microk8s": (["cp-1"], ["worker-1", "worker-2"]),
    "microk8s-ha": (["cp-1", "cp-2", "cp-3"], ["worker-1"]),
}
MICROK8S = {"microk8s", "microk8s-ha"}
SCENARIOS["k3s"] = (["server-1"], ["agent-1", "agent-2"])
SCENARIOS["k3s-etcd"] = (["server-1"], ["agent-1", "agent-2"])
SCENARIOS["k3s-ha"] = (["server-1", "server-2", "server-3"], ["agent-1", "agent-2"])
K3S = {"k3s", "k3s-etcd", "k3s-ha"}
K3S_BUILD = "+k3s1"  # every bed release's K3s build


def make_k3s_releases(bed, repo_url):
    """The channel server's list and every bed release in GitHub's layout,
    under the repository server's root."""
    sys.path.insert(0, str(REPO_ROOT / "testbed"))
    import k3s_artifacts
    releases = [f"{version}{K3S_BUILD}" for versions in RELEASES.values() for version in versions]
    k3s_artifacts.write(bed / "repo" / "k3s", releases)
    channels = [(f"v{minor}", f"v{versions[-1]}{K3S_BUILD}") for minor, versions in RELEASES.items()]
    newest = list(RELEASES.values())
    channels = [("stable", f"v{newest[-2][-1]}{K3S_BUILD}"), ("latest", f"v{newest[-1][-1]}{K3S_BUILD}")] + channels
    data = [{"id": name, "type": "channel", "links": {"self": f"{repo_url}/v1-release/channels/{name}"},
             "name": name, "latest": latest} for name, latest in channels]
    (bed / "repo" / "v1-release").mkdir(parents=True)
    (bed / "repo" / "v1-release" / "channels").write_text(json.dumps(
        {"type": "collection", "links": {"self": f"{repo_url}/v1-release/channels"}, "actions": {},
         "resourceType": "channels", "data": data}))


def make_k3s(bed, root, role, running, etcd_pki=None):
    """A K3s node: the k3s binary of its release, its service running; a
    server's token (the cluster's one, DIR/k3s-token, as every server of a
    K3s cluster holds the same) and its datastore: with `etcd_pki`, an embedded etcd
    member (the bed's real member of this node, reached with K3s' client
    certificate layout under server/tls/etcd), else a SQLite database (a
    real one)."""
    binary = root / "usr/local/bin/k3s"
    binary.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(bed / "repo" / "k3s" / f"v{running}" / "k3s", binary)
    service = "k3s" if role == "control-plane" else "k3s-agent"
    (root / "var/lib/testbed" / f"{service}-running").write_text(f"v{running}\n")
    if role == "control-plane":
        (root / "var/lib/rancher/k3s/server").mkdir(parents=True)
        shutil.copy(bed / "k3s-token", root / "var/lib/rancher/k3s/server/token")
    if role == "control-plane" and etcd_pki is not None:
        (root / "var/lib/rancher/k3s/server/db/etcd").mkdir(parents=True)
        (root / "var/lib/rancher/k3s/server/db/etcd/config").write_text(f"name: {root.name}\n")
        tls = root / "var/lib/rancher/k3s/server/tls/etcd"
        tls.mkdir(parents=True)
        for source, target in (("ca.crt", "server-ca.crt"), ("healthcheck-client.crt", "server-client.crt"),
                               ("healthcheck-client.key", "server-client.key")):
            shutil.copy(etcd_pki / source, tls / target)
    elif role == "control-plane":
        import sqlite3
        db = root / "var/lib/rancher/k3s/server/db"
        db.mkdir()
        with sqlite3.connect(db / "state.db") as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("CREATE TABLE kine (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, value BLOB)")
            connection.executemany("INSERT INTO kine (name, value) VALUES (?, ?)",
                                   [(f"/registry/test-bed/{i}", os.urandom(64)) for i in range(50)])
        state = root / "var/lib/testbed"
        start(bed, f"kine-{root.name}", [sys.executable, REPO_ROOT / "testbed" / "k3s_kine.py", "--db", db / "state.db",
                                         "--running", state / "k3s-running", "--closed", state / "k3s-datastore-closed"])


def snap_revision(version):
    """The bed store's revision of a MicroK8s release: 1.34.3 is 34003."""
    _, minor, patch = (int(part) for part in version.split("."))
    return str(1000 * minor + patch)


def make_snap(root, name, role, running, dqlite):
    """A MicroK8s node: the snap's state for the fake snap, its data folder
    with this node's dqlite files (control planes) or the worker's lock."""
    snap = root / "var/lib/testbed/snap"
    snap.mkdir(parents=True, exist_ok=True)
    revision = snap_revision(running)
    for key, value in (("version", f"v{running}"), ("revision", revision),
                       ("tracking", f"{'.'.join(running.split('.')[:2])}/stable")):
        (snap / key).write_text(value + "\n")
    store = [f"{minor}/stable v{releases[-1]} {snap_revision(releases[-1])}" for minor, releases in RELEASES.items()]
    newest = list(RELEASES.values())[-1][-1]
    (snap / "store").write_text("\n".join(store + [f"latest/stable v{newest} {snap_revision(newest)}"]) + "\n")
    data = root / "var/snap/microk8s" / revision
    if role == "control-plane":
        backend = data / "var/kubernetes/backend"
        backend.mkdir(parents=True)
        (backend / "cluster.yaml").write_text(dqlite)
        (backend / "info.yaml").write_text(f"Address: {name}:19001\n")
        for file in ("cluster.crt", "cluster.key"):
            (backend / file).write_text(f"test bed {file} of {name}\n")
        (backend / "00000001-00000100").write_bytes(os.urandom(4096))
    else:
        (data / "var/lock").mkdir(parents=True)
        (data / "var/lock/clustered.lock").write_text("no-k8s-dqlite\n")
    (root / "var/snap/microk8s/current").symlink_to(revision)
    (root / "snap/microk8s/current/bin").mkdir(parents=True)
    (root / "snap/microk8s/current/bin/dqlite").symlink_to(TOOLS / "dqlite")


def is_synthetic(scenario):
    """synthetic-N or synthetic-N-pods-M: a large cluster of which only the master has an sshd."""
    return re.fullmatch(r"synthetic-[0-9]+(-pods-[0-9]+)?", scenario) is not None


def log(message):
    print(f"testbed: {message}", file=sys.stderr)


def run(*command):
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def revision(version):
    return "2.1" if version == "1.34.4" else "1.1"


def start(bed, name, command):
    """Starts a server in the background, its output in DIR/logs, its pid in DIR/pids."""
    log_file = open(bed / "logs" / f"{name}.log", "ab")
    process = subprocess.Popen(command, stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    (bed / "pids" / f"{name}.pid").write_text(str(process.pid))
    process.log_name = name
    return process


def log_tail(name, lines=5):
    """The last lines of a server's log under the bed, for error messages."""
    path = BED_LOGS / f"{name}.log" if BED_LOGS else None
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:]) if path else ""
    except OSError:
        return ""


def wait_for_file(path, process, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            return path.read_text().strip()
        if process.poll() is not None:
            break
        time.sleep(0.02)
    raise SystemExit(f"testbed: {what} did not start: {log_tail(process.log_name)}")


def wait_for_ready(state_file, process, what, timeout=30):
    """Waits until the orchestrator pod's supervisor says its pod is Ready."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if json.loads(state_file.read_text()).get("ready"):
                return
        except (OSError, ValueError):
            pass
        if process.poll() is not None:
            raise SystemExit(f"testbed: {what} exited ({process.returncode}); see {BED_LOGS / (process.log_name + '.log')}")
        time.sleep(0.1)
    raise SystemExit(f"testbed: {what} is not Ready after {timeout} s; see {BED_LOGS / (process.log_name + '.log')}")


def wait_for_port(port, process, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"testbed: {what} is not listening on {port}: {log_tail(process.log_name)}")


def wait_for_published_members(pki, urls, processes, timeout=30):
    """Until every member lists its client URL, as on a running cluster: a
    member stopped before it published its attributes has a name and no
    client URL, and `etcdctl endpoint health --cluster` leaves it out."""
    if len(urls) < 2:
        return
    command = ["etcdctl", "--endpoints", next(iter(urls.values())), "--cacert", pki / "ca.crt",
               "--cert", pki / "healthcheck-client.crt", "--key", pki / "healthcheck-client.key",
               "member", "list", "-w", "json"]
    deadline, answer = time.time() + timeout, ""
    while time.time() < deadline:
        result = subprocess.run(command, capture_output=True, text=True)
        answer = result.stdout + result.stderr
        if result.returncode == 0:
            published = {m.get("name") for m in json.loads(result.stdout).get("members", []) if m.get("clientURLs")}
            if published >= set(urls):
                return
        time.sleep(0.1)
    name = next(iter(processes))
    raise SystemExit(f"testbed: etcd members did not all publish their client URLs in {timeout} s: {answer[-400:]}"
                     f" {log_tail(processes[name].log_name)}")


def seed_etcd(pki, url):
    """What a Kubernetes cluster's etcd holds at least, so that a snapshot
    and its restore have something to show: the cluster's namespaces."""
    for namespace in ("default", "kube-node-lease", "kube-public", "kube-system", "k8s-upgrade"):
        run("etcdctl", "--endpoints", url, "--cacert", pki / "ca.crt", "--cert", pki / "healthcheck-client.crt",
            "--key", pki / "healthcheck-client.key", "put", f"/registry/namespaces/{namespace}",
            json.dumps({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": namespace}}))


def make_pki(bed):
    pki = bed / "pki"
    pki.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", pki / "ca.key", "-out", pki / "ca.crt", "-days", "7",
        "-subj", "/CN=k8s-upgrade test bed CA")
    (pki / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run("openssl", "req", *ec, "-keyout", pki / "server.key", "-out", pki / "server.csr", "-subj", "/CN=localhost")
    run("openssl", "x509", "-req", "-in", pki / "server.csr", "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key",
        "-CAcreateserial", "-out", pki / "server.crt", "-days", "7", "-extfile", pki / "server.ext")
    return pki


def make_etcd_pki(root):
    """kubeadm's etcd certificates (etc/kubernetes/pki/etcd/*) under a node root."""
    pki = root / "etc" / "kubernetes" / "pki"
    etcd = pki / "etcd"
    etcd.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", etcd / "ca.key", "-out", etcd / "ca.crt", "-days", "7",
        "-subj", "/CN=etcd-ca")
    (etcd / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                     "extendedKeyUsage=serverAuth,clientAuth\n")
    (etcd / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, folder, subject, ext in (("server", etcd, "/CN=master", "server.ext"),
                                       ("peer", etcd, "/CN=master", "server.ext"),
                                       ("healthcheck-client", etcd, "/O=system:masters/CN=kube-etcd-healthcheck-client", "client.ext"),
                                       ("apiserver-etcd-client", pki, "/O=system:masters/CN=kube-apiserver-etcd-client", "client.ext")):
        run("openssl", "req", *ec, "-keyout", folder / f"{name}.key", "-out", folder / f"{name}.csr", "-subj", subject)
        run("openssl", "x509", "-req", "-in", folder / f"{name}.csr", "-CA", etcd / "ca.crt", "-CAkey", etcd / "ca.key",
            "-CAcreateserial", "-out", folder / f"{name}.crt", "-days", "7", "-extfile", etcd / ext)
    return etcd


CONTAINERD = ["1.7.22-1", "1.7.24-1", "1.7.27-1"]  # containerd.io, as Docker's repository names it
CONTAINERD_RUNNING = "1.7.24"


def make_repository(bed):
    root = bed / "repo" / "core:" / "stable:"
    for minor, versions in RELEASES.items():
        folder = root / f"v{minor}" / "deb"
        folder.mkdir(parents=True)
        stanzas = []
        for version in versions:
            full = f"{version}-{revision(version)}"
            for package in ("kubeadm", "kubelet", "kubectl"):
                for arch in ("amd64", "arm64"):
                    stanzas.append(
                        f"Package: {package}\nVersion: {full}\nArchitecture: {arch}\n"
                        f"Maintainer: Kubernetes Authors <dev@kubernetes.io>\n"
                        f"Filename: {arch}/{package}_{full}_{arch}.deb\nSection: admin\nPriority: optional\n"
                        f"Description: {package} (test bed)\n")
        for full in CONTAINERD:
            stanzas.append(f"Package: containerd.io\nVersion: {full}\nArchitecture: amd64\n"
                           f"Filename: amd64/containerd.io_{full}_amd64.deb\nSection: devel\n"
                           f"Description: containerd (test bed)\n")
        (folder / "Packages").write_text("\n".join(stanzas))
        (folder / "Release").write_text(
            f"Origin: obs://build.opensuse.org/isv:kubernetes:core:stable:v{minor}/deb\n"
            f"Label: isv:kubernetes:core:stable:v{minor}\nArchitectures: amd64 arm64\n")
    return bed / "repo"


# A stock openssh-server's host keys: RSA, ECDSA and ed25519.
HOST_KEYS = (("rsa", ["-b", "3072"]), ("ecdsa", ["-b", "256"]), ("ed25519", []))


# Host keys are made once per node name and kept here, then copied into
# each bed: a 3072-bit RSA key takes about half a second, and a test run
# brings a bed up some sixty times. Every node still has keys of its own.
HOST_KEY_CACHE = REPO_ROOT / ".build" / "testbed-host-keys"


def make_host_keys(bed, names):
    """Every node's host keys (a stock set: RSA, ECDSA, ed25519), from the
    cache, the missing ones generated side by side and kept there."""
    processes = []
    made = []
    for name in names:
        cached = HOST_KEY_CACHE / name
        if all((cached / f"host_{kind}").exists() for kind, _ in HOST_KEYS):
            continue
        fresh = HOST_KEY_CACHE / f".{name}.{os.getpid()}"
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        made.append((fresh, cached))
        for kind, extra in HOST_KEYS:
            processes.append(subprocess.Popen(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-f",
                                               fresh / f"host_{kind}", "-C", f"host {name}"],
                                              stdin=subprocess.DEVNULL))
    if any(process.wait() != 0 for process in processes):
        raise SystemExit("testbed: ssh-keygen failed")
    for fresh, cached in made:
        if cached.exists() and not all((cached / f"host_{kind}").exists() for kind, _ in HOST_KEYS):
            shutil.rmtree(cached, ignore_errors=True)  # left incomplete by a bed that was killed
        try:
            fresh.rename(cached)  # another bed may have kept its own first: then use that one
        except OSError:
            shutil.rmtree(fresh, ignore_errors=True)
    for name in names:
        folder = bed / "nodes" / name / "ssh"
        folder.mkdir(parents=True, exist_ok=True)
        for kind, _ in HOST_KEYS:
            for suffix in ("", ".pub"):
                shutil.copy(HOST_KEY_CACHE / name / f"host_{kind}{suffix}", folder / f"host_{kind}{suffix}")


def sshd_config(ssh, port):
    """A node's sshd: its stock host keys and the bed's user key in `ssh`, on `port`."""
    return (f"Port {port}\nListenAddress 127.0.0.1\n"
            + "".join(f"HostKey {ssh / f'host_{kind}'}\n" for kind, _ in HOST_KEYS) +
            f"PidFile {ssh / 'sshd.pid'}\nAuthorizedKeysFile {ssh / 'authorized_keys'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nMaxStartups 64:30:128\nMaxSessions 64\nLogLevel ERROR\n")


def make_node(bed, name, role, repo_url, sim_url, pki, user_key_pub, etcd_url, running, containerd, api_outage,
              dqlite=None, k3s=False, etcd_pki=None, real_apt_template=None):
    root = bed / "nodes" / name
    if real_apt_template is not None:
        return make_real_apt_node(root, real_apt_template, repo_url, user_key_pub)
    for sub in ("etc/apt/sources.list.d", "var/lib/testbed/installed", "var/lib/testbed/holds",
                "var/lib/testbed/lists", "ssh"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    minor = ".".join(running.split(".")[:2])
    (root / "etc/apt/sources.list.d/kubernetes.list").write_text(
        f"deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] {repo_url}/core:/stable:/v{minor}/deb/ /\n")
    shutil.copy(bed / "repo" / "core:" / "stable:" / f"v{minor}" / "deb" / "Packages",
                root / "var/lib/testbed/lists/Packages")
    for package in ("kubeadm", "kubelet", "kubectl"):
        (root / "var/lib/testbed/installed" / package).write_text(f"{running}-{revision(running)}\n")
        (root / "var/lib/testbed/holds" / package).touch()
    (root / "var/lib/testbed/installed" / "containerd.io").write_text(f"{containerd}-1\n")
    (root / "var/lib/testbed/kubelet-running").write_text(running + "\n")
    if dqlite is not None:
        make_snap(root, name, role, running, dqlite)
    elif k3s:
        make_k3s(bed, root, role, running, etcd_pki)
    elif role == "control-plane":
        manifests = root / "etc/kubernetes/manifests"
        manifests.mkdir(parents=True, exist_ok=True)
        for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            (manifests / f"{component}.yaml").write_text(
                f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {component}\n  namespace: kube-system\n"
                f"spec:\n  containers:\n  - name: {component}\n    image: registry.k8s.io/{component}:v{running}\n")
    (root / "var/backups").mkdir(parents=True, exist_ok=True)
    (root / "etc/testbed-node.env").write_text(
        f"NODE_NAME={name}\nNODE_ROLE={role}\nSIM_URL={sim_url}\n"
        f"SIM_CA={pki / 'ca.crt'}\nSIM_TOKEN_FILE={bed / 'token'}\nETCD_ENDPOINT={etcd_url}\n"
        f"API_OUTAGE_FILE={bed / 'api-outage'}\nAPI_OUTAGE_SECONDS={api_outage}\n"
        + (f"DQLITE_DIR={bed / 'dqlite'}\n" if dqlite is not None else ""))
    (root / "ssh" / "authorized_keys").write_text(user_key_pub)
    # The node's root user has its own home in the node's root: a session on
    # the node must not read this machine's ~/.bashrc (a developer's or CI's
    # shell set-up: pyenv's took 85 ms of every command), as a real node's
    # root session reads only the node's.
    (root / "root").mkdir(exist_ok=True)
    port = free_port()
    (root / "ssh" / "sshd_config").write_text(sshd_config(root / "ssh", port) +
        f"SetEnv PATH={TOOLS}{f':{root}/usr/local/bin' if k3s else ''}:/usr/sbin:/usr/bin:/sbin:/bin "
        f"K8S_NODE_ROOT={root} HOME={root / 'root'}\n"
        + (f"ForceCommand {TOOLS / '_node_login'}\n" if dqlite is not None or k3s else ""))
    return root, port


def make_real_apt_node(root, template, repo_url, user_key_pub):
    """A worker with the real apt, dpkg and apt-mark: a copy of the cached
    real-apt worker's Debian root (testbed/real_apt.py), its source on this
    bed's repository, its sshd's sessions chrooted into it. Its kubelet and
    containerd report to the simulator through testbed/kubelet_agent.py."""
    import real_apt
    ssh = root / "ssh"
    real_apt.copy_node(template, root)
    ssh.mkdir(parents=True, exist_ok=True)
    real_apt.write_source(root, repo_url)
    (ssh / "session").write_text(real_apt.session_script(root))
    (ssh / "session").chmod(0o755)
    (ssh / "authorized_keys").write_text(user_key_pub)
    port = free_port()
    (ssh / "sshd_config").write_text(sshd_config(ssh, port) + f"ForceCommand {ssh / 'session'}\n")
    # The lists of this bed's repository (its port is new each time).
    log_file = open(BED_LOGS / f"apt-update-{root.name}.log", "wb")
    update = subprocess.Popen([*real_apt.chroot(root), "apt-get", "update", "-q"], stdout=log_file,
                              stderr=subprocess.STDOUT)
    update.log_name = f"apt-update-{root.name}"
    log_file.close()
    return root, port, update


def real_apt_worker_template(bed, repo_url):
    """The repository of real packages (built once per machine, kept in
    .build) in place of the bed's index-only one for the minors it has,
    and the real-apt worker's root, built once from the Debian root."""
    import real_apt
    build = REPO_ROOT / ".build"
    base = real_apt.base_root(build / "debian-base-bookworm")
    cache = build / f"testbed-real-apt-{real_apt.content_key()}"
    repo, keyring = real_apt.cached_repository(cache)
    for minor in real_apt.RELEASES:
        target = bed / "repo" / "core:" / "stable:" / f"v{minor}" / "deb"
        shutil.rmtree(target)
        shutil.copytree(repo / "core:" / "stable:" / f"v{minor}" / "deb", target)
    # Inside the repository's cache: the worker trusts that repository's key.
    return real_apt.cached_worker(cache / f"worker-{CONTAINERD_RUNNING}-1", base, keyring, repo_url,
                                  f"{CONTAINERD_RUNNING}-1")


def up(args):
    bed = pathlib.Path(args.dir).resolve()
    if (bed / "pids").exists():
        down(args)
    scenario = args.scenario
    if is_synthetic(scenario):
        # A large cluster for scale tests: every node in the API simulator,
        # only the master with an sshd of its own; the others (InternalIP
        # 127.0.0.1) reach it on its port, their fakes acting on its root.
        SCENARIOS[scenario] = (["master"], [])
    if not all(part.isdigit() for part in args.running_version.split(".")) or args.running_version.count(".") != 2:
        raise SystemExit(f"testbed: --running-version must be X.Y.Z, got {args.running_version}")
    if ".".join(args.running_version.split(".")[:2]) not in RELEASES:
        raise SystemExit(f"testbed: the repository has no {args.running_version}; minors: {', '.join(RELEASES)}")
    k3s = scenario in K3S
    if args.real_apt_workers:
        import real_apt
        real_apt_running = real_apt.RUNNING.split("-")[0]
        if scenario not in ("default", "ha") or args.running_version != real_apt_running:
            raise SystemExit(f"testbed: --real-apt-workers needs a kubeadm scenario (default or ha) running "
                             f"{real_apt_running}, the release its worker root holds")
    # K3s nodes run a K3s build of the release.
    running = args.running_version + (K3S_BUILD if k3s else "")
    if scenario.endswith(".json"):
        # A scenario file: its control planes and workers, read the way the simulator reads them.
        document = json.loads(pathlib.Path(scenario).read_text())
        SCENARIOS[scenario] = ([n["name"] for n in document["nodes"] if "control-plane" in n.get("roles", [])],
                               [n["name"] for n in document["nodes"] if "control-plane" not in n.get("roles", [])])
    if scenario not in SCENARIOS:
        raise SystemExit(
            f"testbed: unknown scenario {scenario}; known: {', '.join(SCENARIOS)}, synthetic-N, synthetic-N-pods-M")
    if f"{args.master_containerd}-1" not in CONTAINERD:
        raise SystemExit(f"testbed: --master-containerd must be one of {', '.join(v[:-2] for v in CONTAINERD)}")
    master = SCENARIOS[scenario][0][0]
    started = time.time()
    for sub in ("pids", "logs"):
        (bed / sub).mkdir(parents=True, exist_ok=True)
    global BED_LOGS
    BED_LOGS = bed / "logs"
    if os.geteuid() == 0:
        pathlib.Path("/run/sshd").mkdir(exist_ok=True)
    pki = make_pki(bed)
    token = os.urandom(16).hex()
    (bed / "token").write_text(token + "\n")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", bed / "id_ed25519", "-C", "k8s-upgrade test bed")

    repo = make_repository(bed)
    repo_server = start(bed, "repo", [sys.executable, REPO_ROOT / "testbed" / "repo_server.py", "--root", repo,
                                      "--port-file", bed / "repo.port"])
    # etcd: one member per control plane, named after its node as kubeadm
    # names them, with kubeadm's certificate layout under each node's root
    # (one CA); each node's etcdctl talks to its own member, as on a stacked
    # control plane. The default scenario's single master has one member.
    control_planes = SCENARIOS[scenario][0]
    master_root = bed / "nodes" / control_planes[0]
    microk8s = scenario in MICROK8S
    etcd_pki = make_etcd_pki(master_root)
    for name in control_planes[1:]:
        shutil.copytree(master_root / "etc/kubernetes/pki", bed / "nodes" / name / "etc/kubernetes/pki",
                        dirs_exist_ok=True)
    # MicroK8s: dqlite instead, the cluster's live membership and leader in DIR/dqlite.
    # K3s on SQLite: no etcd; k3s-etcd and k3s-ha: embedded etcd, one member per server.
    sqlite = scenario == "k3s"
    members = {} if microk8s or sqlite else {name: (free_port(), free_port()) for name in control_planes}
    dqlite_yaml = None
    if microk8s:
        (bed / "dqlite").mkdir()
        addresses = [f"10.10.0.{11 + index}:19001" for index in range(len(control_planes))]
        (bed / "dqlite" / "cluster.json").write_text(json.dumps(
            [{"ID": 3297041220608546238 + index, "Address": address, "Role": 0}
             for index, address in enumerate(addresses)], indent="\t") + "\n")
        (bed / "dqlite" / "leader").write_text(addresses[0] + "\n")
        dqlite_yaml = "".join(f"- Address: {address}\n  ID: {3297041220608546238 + index}\n  Role: 0\n"
                              for index, address in enumerate(addresses))
    # kubeadm: each member's data in its node's var/lib/etcd, where a restore puts it,
    # and the API simulator keeps its ConfigMaps in the master's member, as an API server
    # keeps its objects in etcd.
    kubeadm = not microk8s and not k3s
    etcd_client_urls = {name: f"https://127.0.0.1:{client}" for name, (client, _) in members.items()}
    sim_etcd = (["--etcd-endpoint", etcd_client_urls[control_planes[0]], "--etcd-tls",
                 f"{etcd_pki / 'ca.crt'},{etcd_pki.parent / 'apiserver-etcd-client.crt'},"
                 f"{etcd_pki.parent / 'apiserver-etcd-client.key'}"] if kubeadm and members else [])
    sim_binary = pathlib.Path(args.bin_dir) / "k8s-cluster-sim"
    if not sim_binary.exists():
        raise SystemExit(f"testbed: {sim_binary} is missing; run `swift build` first")
    sim = start(bed, "k8s-cluster-sim", [sim_binary, "--scenario", scenario, "--token-file", bed / "token",
                                         "--port-file", bed / "sim.port", "--tls-cert", pki / "server.crt",
                                         "--tls-key", pki / "server.key", "--running-version", running,
                                         "--containerd", f"{master}={args.master_containerd}"]
                + (["--crd", "plans.upgrade.cattle.io"] if args.suc_crd else [])
                # K3s with embedded etcd records each snapshot as an ETCDSnapshotFile.
                + (["--crd", "etcdsnapshotfiles.k3s.cattle.io"] if args.scenario in ("k3s-etcd", "k3s-ha") else [])
                + sim_etcd)
    repo_url = f"http://127.0.0.1:{wait_for_file(bed / 'repo.port', repo_server, 'the package repository')}"
    if k3s:
        make_k3s_releases(bed, repo_url)
        (bed / "k3s-token").write_text(f"K10{os.urandom(16).hex()}::server:{os.urandom(8).hex()}\n")
    sim_port = wait_for_file(bed / 'sim.port', sim, 'k8s-cluster-sim')
    sim_url = f"https://127.0.0.1:{sim_port}"
    # Clients reach the API through a proxy that refuses connections while
    # kubeadm restarts the API server (testbed/api_proxy.py); the nodes' own
    # tools and the bed's controllers talk to the simulator directly.
    proxy = start(bed, "api-proxy", [sys.executable, REPO_ROOT / "testbed" / "api_proxy.py",
                                     "--target", f"127.0.0.1:{sim_port}", "--port-file", bed / "api-proxy.port",
                                     "--outage-file", bed / "api-outage"])
    api_url = f"https://127.0.0.1:{wait_for_file(bed / 'api-proxy.port', proxy, 'the API proxy')}"

    initial = ",".join(f"{name}=http://127.0.0.1:{peer}" for name, (_, peer) in members.items())
    etcd_urls = {name: f"https://127.0.0.1:{client}" for name, (client, _) in members.items()}
    etcds = {}
    etcd_commands = {}
    for name, (client, peer) in members.items():
        url = etcd_urls[name]
        data = bed / "nodes" / name / "var/lib/etcd" if kubeadm else bed / f"etcd-data-{name}"
        data.parent.mkdir(parents=True, exist_ok=True)
        # The single member keeps the pid file name "etcd"; HA members are "etcd-<node>".
        etcd_commands[name] = [str(part) for part in [
            "etcd", "--name", name, "--data-dir", data,
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", initial, "--initial-cluster-state", "new",
            "--initial-cluster-token", f"testbed-{bed.name}",
            "--cert-file", etcd_pki / "server.crt", "--key-file", etcd_pki / "server.key",
            "--client-cert-auth", "--trusted-ca-file", etcd_pki / "ca.crt",
            "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}", "--log-level", "warn"]]
        etcds[name] = start(bed, "etcd" if len(members) == 1 else f"etcd-{name}", etcd_commands[name])
    etcd_url = etcd_urls.get(control_planes[0], "")

    # Pushgateway, Prometheus scraping it every second with the gate rules, the Slack stand-in.
    push_port, prom_port = free_port(), free_port()
    pushgateway = start(bed, "pushgateway", ["prometheus-pushgateway", "--web.listen-address", f"127.0.0.1:{push_port}",
                                          # Debian's build persists to /var/lib/prometheus by default,
                                          # which would carry one bed's metrics into the next.
                                          "--persistence.file="])
    (bed / "prometheus").mkdir()
    rule_files = [str(REPO_ROOT / "testbed" / "gate_rules.yml")] + [
        str(p) for p in sorted((REPO_ROOT / "deploy" / "prometheus").glob("*.rules.yml"))]
    (bed / "prometheus" / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files,
        "scrape_configs": [{"job_name": "pushgateway", "honor_labels": True,
                            "static_configs": [{"targets": [f"127.0.0.1:{push_port}"]}]}],
    }))
    prometheus = start(bed, "prometheus", ["prometheus", "--config.file", bed / "prometheus" / "prometheus.yml",
                                           "--storage.tsdb.path", bed / "prometheus" / "data",
                                           "--web.listen-address", f"127.0.0.1:{prom_port}", "--log.level", "warn"])
    receiver = start(bed, "webhook", [sys.executable, REPO_ROOT / "testbed" / "webhook_receiver.py",
                                      "--port-file", bed / "webhook.port"])

    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    user_key_pub = (bed / "id_ed25519.pub").read_text()
    control_planes, workers = SCENARIOS[scenario]
    known_hosts, ports, servers = [], {}, []
    make_host_keys(bed, control_planes + workers)
    template = real_apt_worker_template(bed, repo_url) if args.real_apt_workers else None
    updates = []
    for name in control_planes + workers:
        role = "control-plane" if name in control_planes else "worker"
        root, port, *update = make_node(
            bed, name, role, repo_url, sim_url, pki, user_key_pub, etcd_urls.get(name, etcd_url), running,
            args.master_containerd if name == master else CONTAINERD_RUNNING, args.api_outage,
            dqlite_yaml if microk8s else None, k3s, None if sqlite else etcd_pki,
            template if role == "worker" else None)
        updates += [(name, process) for process in update]
        servers.append((name, port, start(bed, f"sshd-{name}", ["/usr/sbin/sshd", "-D", "-e", "-f",
                                                                 root / "ssh" / "sshd_config"])))
        # Only the ed25519 key, as the runbook tells operators to collect;
        # the sshd offers all three, as a stock node does.
        host_key = (root / "ssh" / "host_ed25519.pub").read_text().split()
        known_hosts.append(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        ports[name] = port
    (bed / "known_hosts").write_text("".join(known_hosts))
    for name, process in updates:
        if process.wait() != 0:
            raise SystemExit(f"testbed: apt-get update on the real-apt node {name} failed: "
                             f"{log_tail(process.log_name)}")
    if updates:
        start(bed, "kubelet-agent", [sys.executable, REPO_ROOT / "testbed" / "kubelet_agent.py", "--sim-url", sim_url,
                                     "--ca", pki / "ca.crt", "--token-file", bed / "token",
                                     *[arg for name, _ in updates for arg in ("--node", f"{name}={bed / 'nodes' / name}")]])
    for name, port, process in servers:
        wait_for_port(port, process, f"sshd of {name}")
    webhook_url = f"http://127.0.0.1:{wait_for_file(bed / 'webhook.port', receiver, 'the webhook receiver')}"
    for name, (client, _) in members.items():
        wait_for_port(client, etcds[name], f"etcd member {name}")
    if members:
        wait_for_published_members(etcd_pki, etcd_urls, etcds)
        seed_etcd(etcd_pki, next(iter(etcd_urls.values())))
    if kubeadm and members:
        # Each control plane's etcd static pod manifest, with its member's
        # flags as kubeadm writes them; testbed/static_pods.py stops and
        # starts the member and the API as the manifests come and go.
        specs = []
        for name, (_, peer) in members.items():
            root = bed / "nodes" / name
            (root / "etc/kubernetes/manifests/etcd.yaml").write_text(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n"
                "  containers:\n  - command:\n    - etcd\n"
                f"    - --name={name}\n    - --data-dir=/var/lib/etcd\n"
                f"    - --initial-advertise-peer-urls=http://127.0.0.1:{peer}\n"
                f"    - --initial-cluster={initial}\n"
                f"    - --listen-client-urls={etcd_urls[name]}\n"
                "    image: registry.k8s.io/etcd:3.6.5-0\n    name: etcd\n")
            pid_name = "etcd" if len(members) == 1 else f"etcd-{name}"
            specs.append({"node": name, "root": str(root), "pid_file": str(bed / "pids" / f"{pid_name}.pid"),
                          "etcd": etcd_commands[name]})
        (bed / "static-pods.json").write_text(json.dumps(specs, indent=1))
        start(bed, "static-pods", [sys.executable, REPO_ROOT / "testbed" / "static_pods.py",
                                   "--config", bed / "static-pods.json", "--outage-file", bed / "api-outage",
                                   "--restart-seconds", str(args.api_outage), "--sim-url", sim_url,
                                   "--sim-ca", pki / "ca.crt", "--token-file", bed / "token"])
    wait_for_port(push_port, pushgateway, "the Pushgateway")
    wait_for_port(prom_port, prometheus, "Prometheus")

    (bed / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: testbed\n  cluster:\n"
        f"    server: {api_url}\n    certificate-authority: {pki / 'ca.crt'}\n"
        "users:\n- name: admin\n  user:\n"
        f"    tokenFile: {bed / 'token'}\n"
        "contexts:\n- name: testbed\n  context: {cluster: testbed, user: admin}\ncurrent-context: testbed\n")
    env = {
        "TESTBED_DIR": str(bed), "TESTBED_SCENARIO": scenario,
        "TESTBED_DISTRIBUTION": "microk8s" if microk8s else "k3s" if k3s else "kubeadm",
        "KUBECONFIG": str(bed / "kubeconfig"),
        "TESTBED_API_URL": api_url, "TESTBED_SIM_URL": sim_url,
        "TESTBED_API_OUTAGE_FILE": str(bed / "api-outage"),
        "TESTBED_API_TOKEN_FILE": str(bed / "token"), "TESTBED_CA": str(pki / "ca.crt"),
        "TESTBED_REPO_BASE": f"{repo_url}/core:/stable:", "TESTBED_SSH_USER": user,
        "TESTBED_SSH_KEY": str(bed / "id_ed25519"), "TESTBED_KNOWN_HOSTS": str(bed / "known_hosts"),
        "TESTBED_NODES": " ".join(control_planes + workers),
        "TESTBED_SSH_PORTS": " ".join(f"{n}={p}" for n, p in ports.items()),
        "TESTBED_ETCD_ENDPOINT": etcd_url,
        "TESTBED_ETCD_MEMBERS": " ".join(f"{name}={url}" for name, url in etcd_urls.items()), "TESTBED_BACKUP_DIR": str(master_root / "var/backups"),
        "TESTBED_PROMETHEUS_URL": f"http://127.0.0.1:{prom_port}",
        "TESTBED_PUSHGATEWAY_URL": f"http://127.0.0.1:{push_port}",
        "TESTBED_SLACK_WEBHOOK_URL": f"{webhook_url}/services/T0TESTBED/B0TESTBED/testbed",
        "TESTBED_WEBHOOK_URL": webhook_url,
        # Without --orchestrator, the receiver answers POST /execute like it.
        "TESTBED_ORCHESTRATOR_URL": webhook_url, "TESTBED_ORCHESTRATOR_TOKEN_FILE": str(bed / "token"),
        "TESTBED_ORCHESTRATOR_ARGS": str(bed / "orchestrator.args"),
    }
    if template is not None:
        env["TESTBED_REAL_APT_TEMPLATE"] = str(template)
    if k3s:
        env["TESTBED_K3S_CHANNEL_URL"] = f"{repo_url}/v1-release/channels"
        env["TESTBED_K3S_ARTIFACT_URL"] = f"{repo_url}/k3s"
    (bed / "slack-webhook").write_text(env["TESTBED_SLACK_WEBHOOK_URL"] + "\n")
    serve = [
        "serve", "--listen", "127.0.0.1:0", "--store", str(bed / "jobs.sqlite"), "--api-token-file", str(bed / "token"),
        "--kubeconfig", str(bed / "kubeconfig"), "--prometheus-url", env["TESTBED_PROMETHEUS_URL"],
        "--pushgateway-url", env["TESTBED_PUSHGATEWAY_URL"], "--slack-webhook-file", str(bed / "slack-webhook"),
        "--ssh-user", user, "--ssh-key-file", str(bed / "id_ed25519"), "--known-hosts-file", str(bed / "known_hosts"),
        *[arg for name, port in ports.items() for arg in ("--node-address", f"{name}=127.0.0.1:{port}")],
        "--node-script", str(REPO_ROOT / "scripts" / "update_k8s.sh"), "--backup-dir", env["TESTBED_BACKUP_DIR"],
        "--backup-copy-dir", str(bed / "backup-copies"),
        "--repo-base", env["TESTBED_REPO_BASE"], "--expected-nodes", str(len(ports)),
        "--poll-interval", "0.2", "--soak", str(args.soak), "--gate-wait", "60", "--node-ready-timeout", "20",
        "--drain-timeout", "60",
    ] + (
        # A synthetic cluster's nodes (InternalIP 127.0.0.1) are all reached
        # through the master's sshd, so a dry run can reach every one.
        ["--ssh-port", str(ports[master])] if is_synthetic(scenario) else []
    ) + (["--distribution", "microk8s"] if microk8s else []) + (
        ["--distribution", "k3s", "--k3s-channel-url", env["TESTBED_K3S_CHANNEL_URL"],
         "--k3s-artifact-url", env["TESTBED_K3S_ARTIFACT_URL"]] if k3s else [])
    (bed / "orchestrator.args").write_text(json.dumps(serve))
    if args.orchestrator:
        # The orchestrator runs as a pod of the simulated cluster (testbed/orchestrator_pod.py):
        # evicting or deleting that pod stops it, and a replacement starts, as in a real cluster.
        port = free_port()
        pod = start(bed, "orchestrator-pod", [
            sys.executable, REPO_ROOT / "testbed" / "orchestrator_pod.py", "--dir", bed,
            "--binary", pathlib.Path(args.bin_dir) / "k8s-upgrade", "--args-file", bed / "orchestrator.args",
            "--api-url", sim_url, "--ca", pki / "ca.crt", "--port", str(port),
            "--node", args.orchestrator_node or master, "--grace", str(args.orchestrator_grace),
            "--restart-delay", str(args.orchestrator_restart_delay), "--volume", args.orchestrator_volume])
        wait_for_ready(bed / "orchestrator-pod.json", pod, "the orchestrator pod", timeout=30)
        env["TESTBED_ORCHESTRATOR_URL"] = f"http://127.0.0.1:{port}"
        env["TESTBED_ORCHESTRATOR_POD"] = str(bed / "orchestrator-pod.json")
    (bed / "env").write_text("".join(f"export {k}={json.dumps(v)}\n" for k, v in env.items()))
    log(f"up in {time.time() - started:.1f} s: {scenario}, {len(ports)} nodes; source {bed / 'env'}")


def running(pid):
    """Whether pid is a live process; a zombie (ended, not yet reaped by
    whoever adopted it) counts as gone."""
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def down(args):
    bed = pathlib.Path(args.dir).resolve()
    pids = sorted((bed / "pids").glob("*.pid")) if (bed / "pids").exists() else []
    alive = []
    for pid_file in pids:
        try:
            pid = int(pid_file.read_text())
            # etcd members stopping together each wait for a leader to hand
            # over to (seconds); the bed's data goes with the bed anyway.
            os.killpg(pid, signal.SIGKILL if pid_file.name.startswith("etcd") else signal.SIGTERM)
            alive.append(pid)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
    deadline = time.time() + 5
    for pid in alive:
        while time.time() < deadline and running(pid):
            time.sleep(0.02)
        if running(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    shutil.rmtree(bed, ignore_errors=True)
    log(f"down: stopped {len(alive)} processes")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--dir", default=str(REPO_ROOT / ".testbed"))
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--bin-dir", default=str(REPO_ROOT / ".build" / "debug"))
    parser.add_argument("--running-version", default=RUNNING, help="release every node runs (default %(default)s)")
    parser.add_argument("--orchestrator", action="store_true",
                        help="also run k8s-upgrade serve for the bed; TESTBED_ORCHESTRATOR_URL points at it")
    parser.add_argument("--suc-crd", action="store_true",
                        help="serve system-upgrade-controller's Plans, as if its CRD were installed")
    parser.add_argument("--soak", default="2", help="soak seconds of that orchestrator (default %(default)s)")
    parser.add_argument("--orchestrator-node", help="node of the orchestrator's first pod (default: the first "
                        "control plane, where deploy/'s affinity puts it)")
    parser.add_argument("--api-outage", type=float, default=20,
                        help="seconds the API refuses connections when kubeadm restarts a control plane's API "
                             "server (default %(default)s; 0: none)")
    parser.add_argument("--orchestrator-grace", type=int, default=10,
                        help="terminationGracePeriodSeconds of the orchestrator's pod (default %(default)s)")
    parser.add_argument("--orchestrator-restart-delay", type=float, default=1.0,
                        help="seconds before a replacement pod or container starts (default %(default)s)")
    parser.add_argument("--orchestrator-volume", choices=["shared", "node-local"], default="shared",
                        help="node-local: a replacement on another node starts with an empty store")
    parser.add_argument("--real-apt-workers", action="store_true",
                        help="workers with the real apt, dpkg and apt-mark in a Debian root (testbed/real_apt.py) "
                             "instead of the fakes")
    parser.add_argument("--master-containerd", default=CONTAINERD_RUNNING,
                        help="containerd of the first control plane (default %(default)s, as every other node)")
    args = parser.parse_args()
    up(args) if args.command == "up" else down(args)


if __name__ == "__main__":
    main()
