#!/usr/bin/env python3
"""The kubelet and containerd of the bed's real-apt nodes, as daemons.

A real-apt node's sessions run chrooted into its Debian root, where the
simulator's address, CA and token are not; its systemctl (a fake: systemd
cannot run here) records the version of the package a restart started in
var/lib/testbed/kubelet-running or containerd-running. This process plays
the node's kubelet from outside: whenever one of those files changes, it
reports the started version to the API simulator (the kubelet's version
with a Ready condition, or the container runtime's), as a kubelet does
when it starts. Polls every 50 ms.

  kubelet_agent.py --sim-url URL --ca FILE --token-file FILE --node NAME=ROOT [--node ...]
"""
import argparse
import datetime
import json
import pathlib
import ssl
import sys
import time
import urllib.request


def report(args, context, name, status):
    token = pathlib.Path(args.token_file).read_text().strip()
    request = urllib.request.Request(
        f"{args.sim_url}/api/v1/nodes/{name}/status", method="PATCH",
        data=json.dumps({"status": status}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/strategic-merge-patch+json"})
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        response.read()


def status_of(kind, version):
    if kind == "containerd":
        return {"nodeInfo": {"containerRuntimeVersion": f"containerd://{version}"}}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"nodeInfo": {"kubeletVersion": f"v{version}"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                            "lastTransitionTime": now}]}


def read(path):
    try:
        return path.read_text().strip()
    except OSError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim-url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--node", action="append", required=True, help="NAME=ROOT")
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.ca)
    watched = {}
    for entry in args.node:
        name, _, root = entry.partition("=")
        for kind in ("kubelet", "containerd"):
            path = pathlib.Path(root) / "var/lib/testbed" / f"{kind}-running"
            # What runs when the bed comes up is what the simulator already says.
            watched[(name, kind)] = (path, read(path))
    while True:
        for (name, kind), (path, last) in list(watched.items()):
            current = read(path)
            if current and current != last:
                try:
                    report(args, context, name, status_of(kind, current))
                except OSError as error:
                    print(f"kubelet_agent: reporting {kind} {current} of {name}: {error}", file=sys.stderr,
                          flush=True)
                    continue  # tried again at the next poll
                print(f"kubelet_agent: {name}: {kind} {current} started", file=sys.stderr, flush=True)
                watched[(name, kind)] = (path, current)
        time.sleep(0.05)


if __name__ == "__main__":
    main()
