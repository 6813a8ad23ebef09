#!/usr/bin/env python3
"""K3s release artifacts in GitHub's layout, for the test bed.

Writes ROOT/v<release>/k3s (a small stand-in of the k3s binary that
prints its version as k3s does) and ROOT/v<release>/sha256sum-amd64.txt
(sha256sum's format, listing the binary among the release's other files)
for each release named, as https://github.com/k3s-io/k3s/releases/download
lays them out. Served by the bed's repository server, ROOT is what the
node script's --artifacts points at.

  k3s_artifacts.py --root DIR RELEASE...      (RELEASE like 1.34.5+k3s1)
"""
import argparse
import hashlib
import pathlib
import re

K3S = """#!/bin/sh
# Test-bed k3s v{release}: prints its version as k3s does; the bed's
# systemctl reports it as the node's kubelet version when k3s restarts;
# etcd-snapshot is the bed's (testbed/node-tools/k3s-etcd-snapshot), and
# so is server --cluster-reset (testbed/node-tools/k3s-server).
case "${{1:-}}" in
  --version | -v | version) echo "k3s version v{release} ({commit})"; echo "go version go1.24.4" ;;
  etcd-snapshot) shift; exec k3s-etcd-snapshot "$@" ;;
  server) shift; exec k3s-server "$@" ;;
  *) echo "k3s (test bed) v{release}: $*" >&2; exit 1 ;;
esac
"""


def binary(release):
    commit = hashlib.sha256(release.encode()).hexdigest()[:8]
    return K3S.format(release=release, commit=commit).encode()


def write(root, releases):
    root = pathlib.Path(root)
    for release in releases:
        if not re.fullmatch(r"\d+\.\d+\.\d+\+k3s[1-9]\d*", release):
            raise SystemExit(f"k3s_artifacts.py: not a K3s release: {release!r}")
        folder = root / f"v{release}"
        folder.mkdir(parents=True, exist_ok=True)
        data = binary(release)
        (folder / "k3s").write_bytes(data)
        (folder / "k3s").chmod(0o755)
        images = f"k3s-airgap-images-amd64 {release}\n".encode()
        (folder / "k3s-airgap-images-amd64.tar.gz").write_bytes(images)
        lines = [f"{hashlib.sha256(images).hexdigest()}  k3s-airgap-images-amd64.tar.gz",
                 f"{hashlib.sha256(data).hexdigest()}  k3s"]
        (folder / "sha256sum-amd64.txt").write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("releases", nargs="+")
    args = parser.parse_args()
    write(args.root, args.releases)


if __name__ == "__main__":
    main()
