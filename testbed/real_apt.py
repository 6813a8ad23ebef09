#!/usr/bin/env python3
"""A node with the real apt and dpkg, for the node script's tests.

`up` builds (once, cached) a minimal Debian root with debootstrap, builds a
package repository in the pkgs.k8s.io shape holding small real .deb files
(kubeadm, kubelet, kubectl, cri-tools, containerd.io with the real version
strings and revisions; their payload are small fakes of the binaries),
signed with a throw-away key and trusted through a signed-by keyring as
pkgs.k8s.io requires, copies the root into a node, installs and holds the
running release there with the real apt-get and apt-mark, and starts a real
sshd whose sessions run chrooted into the node (ForceCommand). Only
systemctl is a fake (systemd cannot run here). Prints a JSON object: port,
known_hosts, key, node root, repository URL.

`down --dir DIR` stops what `up` started.
"""
import argparse
import hashlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from serving import free_port

HERE = pathlib.Path(__file__).resolve().parent
# minor -> [(release, revision)]; 1.34.4 carries a -2.1 revision, as in testbed.py.
RELEASES = {
    "1.34": [("1.34.3", "1.1"), ("1.34.4", "2.1"), ("1.34.5", "1.1")],
    "1.35": [("1.35.0", "1.1"), ("1.35.1", "1.1")],
}
CRI_TOOLS = {"1.34": "1.34.0-1.1", "1.35": "1.35.0-1.1"}
CONTAINERD = ["1.7.22-1", "1.7.24-1"]
RUNNING = "1.34.3-1.1"

KUBEADM = r"""#!/bin/sh
# Test-bed kubeadm @VERSION@ (packaged): upgrade apply/node write the static
# pod manifests, as kubeadm does on a control plane.
V=@VERSION@
manifests() {
  mkdir -p /etc/kubernetes/manifests
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    printf 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: %s\n    image: registry.k8s.io/%s:v%s\n' \
      "$c" "$c" "$1" >"/etc/kubernetes/manifests/$c.yaml"
  done
}
case "$1 $2" in
  "version "*) echo "v$V" ;;
  "upgrade apply")
    t=${3#v}
    [ "$t" = "$V" ] || { echo "[upgrade/version] FATAL: Specified version to upgrade to \"v$t\" is higher than the kubeadm version \"v$V\"" >&2; exit 1; }
    manifests "$t"
    echo "[upgrade/successful] SUCCESS! Your cluster was upgraded to \"v$t\". Enjoy!" ;;
  "upgrade node")
    if grep -qx control-plane /etc/testbed-role 2>/dev/null; then manifests "$V"; fi
    echo "[upgrade] The configuration for this node was successfully updated!" ;;
  *) echo "kubeadm (test bed): unknown command $*" >&2; exit 1 ;;
esac
"""

VERSIONED = r"""#!/bin/sh
echo "@NAME@ version v@VERSION@ (test bed)"
"""

# A test can make the kubelet's configure step slow (to kill dpkg in it, or
# to hold apt's lock meanwhile).
KUBELET_POSTINST = r"""#!/bin/sh
set -e
if [ "$1" = configure ] && [ -f /var/lib/testbed/postinst-seconds ]; then
  sleep "$(cat /var/lib/testbed/postinst-seconds)"
fi
exit 0
"""

SYSTEMCTL = r"""#!/bin/sh
# Test-bed systemctl (systemd does not run here): restarting a service
# records the installed package's version as the running one.
state=/var/lib/testbed
mkdir -p "$state"
case $1 in
  daemon-reload) ;;
  restart | start)
    case $2 in
      kubelet | kubelet.service) dpkg-query -W -f='${Version}' kubelet | cut -d- -f1 >"$state/kubelet-running" ;;
      containerd | containerd.service) dpkg-query -W -f='${Version}' containerd.io | cut -d- -f1 >"$state/containerd-running" ;;
      *) echo "Failed to restart $2: Unit not found." >&2; exit 5 ;;
    esac ;;
  is-active)
    [ -f "$state/kubelet-running" ] || { [ "$2" = --quiet ] || echo inactive; exit 3; }
    [ "$2" = --quiet ] || echo active ;;
  *) echo "Unknown command verb $1." >&2; exit 1 ;;
esac
"""


def run(*command, **kwargs):
    return subprocess.run([str(c) for c in command], check=True, **kwargs)


def host_mirror():
    """The Debian mirror this machine's apt uses, so the root comes from where its packages do."""
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        try:
            text = pathlib.Path(path).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"]:
                uri = next((w for w in words[1:] if w.startswith("http")), None)
                if uri and "security" not in uri:
                    return uri
    return "http://deb.debian.org/debian"


def base_root(cache):
    """A minimal Debian root, built once: debootstrap --variant=minbase."""
    base = cache / "base"
    if (base / ".complete").exists():
        return base
    cache.mkdir(parents=True, exist_ok=True)
    # A folder of this process's own: the test process and a bed may build at once.
    partial = cache / f"base.partial.{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    run("debootstrap", "--variant=minbase", "bookworm", partial, host_mirror(), stdout=subprocess.DEVNULL)
    (partial / ".complete").touch()
    keep(partial, base)
    return base


def keep(partial, cache):
    """Puts a finished build in place as `cache`, unless another process
    kept a finished one first (then this one is dropped); an unfinished one
    left by a killed build is replaced, and so are the build folders of
    processes that are gone."""
    if cache.exists() and not (cache / ".complete").exists():
        shutil.rmtree(cache, ignore_errors=True)
    try:
        partial.rename(cache)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    stem = partial.name.rsplit(".", 1)[0]
    for other in partial.parent.glob(f"{stem}.*"):
        pid = other.name.rsplit(".", 1)[1]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(other, ignore_errors=True)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def content_key():
    """Names the caches after what builds them (this file: the packages,
    their versions and payloads, the node's fake systemctl), so an edit
    builds new ones instead of reusing stale ones."""
    return hashlib.sha256(pathlib.Path(__file__).read_bytes()).hexdigest()[:12]


def build_deb(out, name, version, files, depends=None, postinst=None, arch="amd64"):
    root = out / f".build-{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    control = (f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
               f"Maintainer: Kubernetes Authors <dev@kubernetes.io>\nSection: admin\nPriority: optional\n"
               + (f"Depends: {depends}\n" if depends else "")
               + f"Description: {name} (k8s-upgrade test bed)\n")
    (root / "DEBIAN" / "control").write_text(control)
    if postinst:
        (root / "DEBIAN" / "postinst").write_text(postinst)
        (root / "DEBIAN" / "postinst").chmod(0o755)
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o755)
    run("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, out / f"{name}_{version}_{arch}.deb",
        stdout=subprocess.DEVNULL)
    shutil.rmtree(root)


def make_repository(directory):
    """pkgs.k8s.io's shape: core:/stable:/v1.X/deb/ with flat Packages, Release, InRelease."""
    gnupg = directory / "gnupg"
    gnupg.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--quiet", "--homedir", gnupg]
    run(*gpg, "--passphrase", "", "--quick-gen-key", "k8s-upgrade test repository", "ed25519", "sign", "never")
    keyring = directory / "kubernetes-apt-keyring.gpg"
    run(*gpg, "--output", keyring, "--export")
    repo = directory / "repo"
    for minor, releases in RELEASES.items():
        folder = repo / "core:" / "stable:" / f"v{minor}" / "deb"
        folder.mkdir(parents=True)
        cri = CRI_TOOLS[minor]
        build_deb(folder, "cri-tools", cri, {"/usr/bin/crictl": VERSIONED.replace("@NAME@", "crictl")
                                               .replace("@VERSION@", cri.split("-")[0])})
        for release, revision in releases:
            version = f"{release}-{revision}"
            depends = f"cri-tools (>= {minor}.0)"
            build_deb(folder, "kubeadm", version, {"/usr/bin/kubeadm": KUBEADM.replace("@VERSION@", release)},
                      depends=depends)
            build_deb(folder, "kubelet", version, {"/usr/bin/kubelet": VERSIONED.replace("@NAME@", "kubelet")
                                                    .replace("@VERSION@", release)},
                      depends=depends, postinst=KUBELET_POSTINST)
            build_deb(folder, "kubectl", version, {"/usr/bin/kubectl": VERSIONED.replace("@NAME@", "kubectl")
                                                    .replace("@VERSION@", release)})
        for version in CONTAINERD:
            build_deb(folder, "containerd.io", version,
                      {"/usr/bin/containerd": VERSIONED.replace("@NAME@", "containerd")
                       .replace("@VERSION@", version.split("-")[0])})
        packages = subprocess.run(["apt-ftparchive", "packages", "."], cwd=folder, check=True,
                                  capture_output=True, text=True).stdout
        (folder / "Packages").write_text(packages)
        release = subprocess.run(
            ["apt-ftparchive", "-o", f"APT::FTPArchive::Release::Origin=obs://build.opensuse.org/isv:kubernetes:core:stable:v{minor}/deb",
             "-o", f"APT::FTPArchive::Release::Label=isv:kubernetes:core:stable:v{minor}",
             "-o", "APT::FTPArchive::Release::Architectures=amd64", "release", "."],
            cwd=folder, check=True, capture_output=True, text=True).stdout
        (folder / "Release").write_text(release)
        run(*gpg, "--clearsign", "--output", folder / "InRelease", folder / "Release")
        run(*gpg, "--armor", "--detach-sign", "--output", folder / "Release.gpg", folder / "Release")
    return repo, keyring


def write_source(node, repo_url, sources="list", minor="1.34"):
    """The node's Kubernetes apt source, in the one-line or the deb822 format."""
    uri = f"{repo_url}/core:/stable:/v{minor}/deb/"
    folder = node / "etc/apt/sources.list.d"
    if sources == "deb822":
        (folder / "kubernetes.sources").write_text(
            f"Types: deb\nURIs: {uri}\nSuites: /\nSigned-By: /etc/apt/keyrings/kubernetes-apt-keyring.gpg\n")
    else:
        (folder / "kubernetes.list").write_text(
            f"deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] {uri} /\n")


def chroot(node):
    """A command prefix that runs in the node's root with a clean environment."""
    return ["chroot", node, "/usr/bin/env", "-i", "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "DEBIAN_FRONTEND=noninteractive"]


def install_node(node, keyring, repo_url, sources="list", role="worker", containerd="1.7.22-1"):
    """Makes a copy of the Debian root a node of `role`: the repository
    trusted through its signed-by keyring, the running release installed
    with the real apt-get and held with the real apt-mark, its services
    started (the fake systemctl)."""
    (node / "etc/apt/keyrings").mkdir(parents=True, exist_ok=True)
    shutil.copy(keyring, node / "etc/apt/keyrings/kubernetes-apt-keyring.gpg")
    write_source(node, repo_url, sources)
    # Only the Kubernetes repository: the node needs nothing from Debian's.
    (node / "etc/apt/sources.list").write_text("")
    # No /dev/pts in a chroot: dpkg's output goes through a pipe, not a pty.
    (node / "etc/apt/apt.conf.d/99testbed-no-pty").write_text('Dpkg::Use-Pty "0";\n')
    (node / "usr/local/bin/systemctl").write_text(SYSTEMCTL)
    (node / "usr/local/bin/systemctl").chmod(0o755)
    (node / "etc/testbed-role").write_text(role + "\n")
    (node / "var/lib/testbed").mkdir(parents=True, exist_ok=True)
    run(*chroot(node), "apt-get", "update", "-q", stdout=subprocess.DEVNULL)
    run(*chroot(node), "apt-get", "install", "-y", "-q", *(f"{p}={RUNNING}" for p in ("kubeadm", "kubelet", "kubectl")),
        f"containerd.io={containerd}", stdout=subprocess.DEVNULL)
    run(*chroot(node), "apt-mark", "hold", "kubeadm", "kubelet", "kubectl", stdout=subprocess.DEVNULL)
    run(*chroot(node), "systemctl", "restart", "kubelet")
    if role == "control-plane":
        run(*chroot(node), "kubeadm", "upgrade", "apply", f"v{RUNNING.split('-')[0]}", "-y", stdout=subprocess.DEVNULL)


def session_script(node):
    """sshd's ForceCommand: every session runs chrooted into the node, as the node's root."""
    return ("#!/bin/sh\n"
            f"exec chroot '{node}' /usr/bin/env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "
            "LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive /bin/bash -c \"${SSH_ORIGINAL_COMMAND:-exec bash -l}\"\n")


def cached_repository(cache):
    """The repository and its keyring, built once per machine into `cache`
    and kept (a bed with real-apt nodes is brought up several times a run)."""
    if not (cache / ".complete").exists():
        partial = cache.with_name(f".{cache.name}.{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        make_repository(partial)
        (partial / ".complete").touch()
        keep(partial, cache)
    return cache / "repo", cache / "kubernetes-apt-keyring.gpg"


def cached_worker(cache, base, keyring, repo_url, containerd):
    """A worker's root (the running release installed and held), built once
    per machine into `cache` from the Debian root; nodes are copies of it."""
    if not (cache / ".complete").exists():
        partial = cache.with_name(f".{cache.name}.{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        run("cp", "-a", base, partial)
        (partial / ".complete").unlink(missing_ok=True)
        install_node(partial, keyring, repo_url, containerd=containerd)
        run(*chroot(partial), "systemctl", "restart", "containerd")
        # debootstrap's and apt's downloaded packages and caches: 36 MB each node would copy.
        run(*chroot(partial), "apt-get", "clean")
        (partial / ".complete").touch()
        keep(partial, cache)
    return cache


def copy_node(template, node):
    """A node's root from `template` in a fraction of a full copy: /usr, the
    bulk, as hard links (dpkg replaces a package's files by renaming new
    ones over them, never writing into one, so a node's upgrade leaves the
    template's files as they were), the rest copied (apt's lists, dpkg's
    database and logs are written in place)."""
    node.mkdir(parents=True, exist_ok=True)
    for entry in template.iterdir():
        if entry.name == "usr":
            run("cp", "-al", entry, node / "usr")
            shutil.rmtree(node / "usr/local")
            run("cp", "-a", entry / "local", node / "usr/local")
        elif entry.name != ".complete":
            run("cp", "-a", entry, node / entry.name)


def wait_for(condition, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise SystemExit(f"real_apt: {what} did not come up")


def start(directory, name, command):
    log = open(directory / f"{name}.log", "ab")
    process = subprocess.Popen([str(c) for c in command], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    (directory / f"{name}.pid").write_text(str(process.pid))
    return process


def up(args):
    directory = pathlib.Path(args.dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    base = base_root(pathlib.Path(args.base_cache).resolve())
    repo, keyring = make_repository(directory)
    server = start(directory, "repo", [sys.executable, HERE / "repo_server.py", "--root", repo,
                                       "--port-file", directory / "repo.port"])
    wait_for(lambda: (directory / "repo.port").exists() or server.poll() is not None, "the repository")
    repo_url = f"http://127.0.0.1:{(directory / 'repo.port').read_text().strip()}"

    node = directory / "node"
    run("cp", "-a", base, node)
    (node / ".complete").unlink(missing_ok=True)
    install_node(node, keyring, repo_url, args.sources, args.role)

    # sshd: every session runs chrooted into the node, as the node's root.
    ssh = directory / "ssh"
    ssh.mkdir()
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ssh / "host_ed25519", "-C", "real-apt node")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ssh / "id_ed25519", "-C", "k8s-upgrade")
    shutil.copy(ssh / "id_ed25519.pub", ssh / "authorized_keys")
    session = ssh / "session"
    session.write_text(session_script(node))
    session.chmod(0o755)
    port = free_port()
    (ssh / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {ssh / 'host_ed25519'}\nPidFile {ssh / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {ssh / 'authorized_keys'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n"
        f"ForceCommand {session}\n")
    if os.geteuid() == 0:
        pathlib.Path("/run/sshd").mkdir(exist_ok=True)
    sshd = start(directory, "sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", ssh / "sshd_config"])

    def listening():
        if sshd.poll() is not None:
            raise SystemExit(f"real_apt: sshd exited: {(directory / 'sshd.log').read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, "sshd")
    host_key = (ssh / "host_ed25519.pub").read_text().split()
    (ssh / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    print(json.dumps({"port": port, "known_hosts": str(ssh / "known_hosts"), "key": str(ssh / "id_ed25519"),
                      "node": str(node), "repo_url": repo_url}))


def down(args):
    directory = pathlib.Path(args.dir).resolve()
    for name in ("sshd", "repo"):
        try:
            pid = int((directory / f"{name}.pid").read_text())
            os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    base_parser = commands.add_parser("base", help="build the Debian root once (debootstrap), if not built yet")
    base_parser.add_argument("--base-cache", required=True)
    start_parser = commands.add_parser("up")
    start_parser.add_argument("--dir", required=True)
    start_parser.add_argument("--base-cache", required=True, help="where the Debian root is built once and kept")
    start_parser.add_argument("--sources", choices=("list", "deb822"), default="list")
    start_parser.add_argument("--role", choices=("worker", "control-plane"), default="worker")
    stop_parser = commands.add_parser("down")
    stop_parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    if args.command == "base":
        base_root(pathlib.Path(args.base_cache).resolve())
    elif args.command == "up":
        up(args)
    else:
        down(args)


if __name__ == "__main__":
    main()
