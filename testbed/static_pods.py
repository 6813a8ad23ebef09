#!/usr/bin/env python3
"""The kubelet's static pods on the bed's kubeadm control planes, as far as
a control plane restore needs them: etcd and the API server run while their
manifests are in etc/kubernetes/manifests, and stop when they are moved
away, as the kubelet does with /etc/kubernetes/manifests.

For each control plane (the config file, JSON: a list of {"node", "root",
"pid_file", "etcd"} where "etcd" is the member's command line):
  - etcd.yaml gone: the member is stopped (SIGTERM); back: it is started
    again with the same command line, whose --data-dir is the node's
    var/lib/etcd (so a restored data folder is what it serves).
  - kube-apiserver.yaml on the first control plane gone: the API is away
    (the outage file holds a far end); back: the API server's version is
    the manifest's image tag (PUT /sim/v1/control-plane/NODE) and the API
    answers again after --restart-seconds.
  - ROOT/run/testbed-static-pods/NAME exists while NAME runs: what the
    bed's crictl lists.

    static_pods.py --config FILE --outage-file FILE --restart-seconds S
                   --sim-url URL --sim-ca FILE --token-file FILE
"""
import argparse
import json
import os
import pathlib
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def log(message):
    print(f"{time.strftime('%H:%M:%S')} static-pods: {message}", file=sys.stderr, flush=True)


def alive(pid):
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class ControlPlane:
    def __init__(self, spec, first, args):
        self.node = spec["node"]
        self.root = pathlib.Path(spec["root"])
        self.pid_file = pathlib.Path(spec["pid_file"])
        self.etcd = spec["etcd"]
        self.first = first
        self.args = args
        self.manifests = self.root / "etc/kubernetes/manifests"
        self.running = self.root / "run/testbed-static-pods"
        self.running.mkdir(parents=True, exist_ok=True)
        self.seen = {name: self.present(name) for name in COMPONENTS}
        for name in COMPONENTS:
            self.mark(name, self.seen[name])

    def present(self, name):
        return (self.manifests / f"{name}.yaml").exists()

    def mark(self, name, running):
        path = self.running / name
        if running:
            path.touch()
        else:
            path.unlink(missing_ok=True)

    def step(self):
        for name in COMPONENTS:
            now = self.present(name)
            if now == self.seen[name]:
                continue
            if name == "etcd":
                self.start_etcd() if now else self.stop_etcd()
            elif name == "kube-apiserver" and self.first:
                self.api_back() if now else self.api_away()
            self.seen[name] = now
            self.mark(name, now)
            log(f"{self.node}: {name} {'started' if now else 'stopped'}")

    def stop_etcd(self):
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.time() + 10
        while time.time() < deadline and alive(pid):
            time.sleep(0.05)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)

    def start_etcd(self):
        log_file = open(self.pid_file.parent.parent / "logs" / f"{self.pid_file.stem}.log", "ab")
        process = subprocess.Popen(self.etcd, stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        self.pid_file.write_text(str(process.pid))

    def api_away(self):
        write_outage(self.args.outage_file, time.time() + 10 ** 6)

    def api_back(self):
        text = (self.manifests / "kube-apiserver.yaml").read_text()
        match = re.search(r"image: .*kube-apiserver:v([0-9]+\.[0-9]+\.[0-9]+)", text)
        if match:
            token = pathlib.Path(self.args.token_file).read_text().strip()
            request = urllib.request.Request(
                f"{self.args.sim_url}/sim/v1/control-plane/{self.node}", method="PUT",
                data=json.dumps({"version": match.group(1)}).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            context = ssl.create_default_context(cafile=self.args.sim_ca)
            urllib.request.urlopen(request, context=context, timeout=10).read()
        write_outage(self.args.outage_file, time.time() + self.args.restart_seconds)


def write_outage(path, end):
    path = pathlib.Path(path)
    path.with_suffix(".tmp").write_text(f"{end:.3f}\n")
    path.with_suffix(".tmp").replace(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--outage-file", required=True)
    parser.add_argument("--restart-seconds", type=float, default=1.0)
    parser.add_argument("--sim-url", required=True)
    parser.add_argument("--sim-ca", required=True)
    parser.add_argument("--token-file", required=True)
    args = parser.parse_args()
    specs = json.loads(pathlib.Path(args.config).read_text())
    planes = [ControlPlane(spec, index == 0, args) for index, spec in enumerate(specs)]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        for plane in planes:
            try:
                plane.step()
            except Exception as error:  # keep watching; say what went wrong
                log(f"{plane.node}: {error}")
        time.sleep(0.1)


if __name__ == "__main__":
    main()
