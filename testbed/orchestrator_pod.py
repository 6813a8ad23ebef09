#!/usr/bin/env python3
"""The orchestrator as a pod of the simulated cluster.

Plays, for `k8s-upgrade serve`, the parts of Kubernetes a real install leans
on: the Deployment controller and the scheduler (one pod, owned by a
ReplicaSet, placed as deploy/orchestrator.yaml's affinity would place it:
the first schedulable control plane, else a schedulable worker), and the
kubelet (the process runs as that pod with POD_NAME, POD_NAMESPACE and
NODE_NAME set as the downward API sets them; it turns Ready once it listens;
when the pod is deleted or evicted the process gets SIGTERM, then SIGKILL
after the pod's grace period; a process that dies by itself is restarted in
the same pod, as restartPolicy Always does).

After a deletion, a replacement pod starts after --restart-delay seconds on
a schedulable node: on the same store, or, with --volume node-local, on an
empty one when it lands on another node (a node-local volume does not move).

Every start, stop and kill is a line in DIR/logs/orchestrator-pod.log, and
DIR/orchestrator-pod.json says what runs now: {pod, node, pid, starts,
store}. SIGTERM to this process stops the orchestrator and exits.
"""
import argparse
import json
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

NAMESPACE = "k8s-upgrade"
LABELS = {"app.kubernetes.io/name": "k8s-upgrade", "app.kubernetes.io/component": "orchestrator"}
REPLICA_SET = "k8s-upgrade-7c6d9f8b4"


class API:
    """The simulator's API with the bed's token and CA."""

    def __init__(self, url, ca, token):
        self.url, self.token = url, token
        self.context = ssl.create_default_context(cafile=ca)

    def call(self, method, path, body=None, content_type="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=5) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, {}


def say(message):
    print(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {message}", flush=True)


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Supervisor:
    def __init__(self, args):
        self.args = args
        bed = pathlib.Path(args.dir)
        self.bed = bed
        self.api = API(args.api_url, args.ca, (bed / "token").read_text().strip())
        serve, self.serve = json.loads(pathlib.Path(args.args_file).read_text()), []
        while serve:  # this process sets the address (the Service's port) and the store (the volume)
            word = serve.pop(0)
            if word in ("--listen", "--store", "--port-file"):
                serve.pop(0)
            else:
                self.serve.append(word)
        self.pod = None  # name of the current pod
        self.node = None
        self.process = None
        self.ready = False
        self.terminating_since = None
        self.starts = 0
        self.store = None
        self.stopping = False
        self.replicaset_uid = None

    # -- the Deployment controller and the scheduler

    def ensure_replicaset(self):
        status, body = self.api.call("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets/{REPLICA_SET}")
        if status == 404:
            # replicas 0: the simulator's ReplicaSet controller leaves the pods to this process.
            status, body = self.api.call("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets", {
                "metadata": {"name": REPLICA_SET, "labels": LABELS},
                "spec": {"replicas": 0, "selector": {"matchLabels": LABELS},
                         "template": {"metadata": {"labels": LABELS},
                                      "spec": {"terminationGracePeriodSeconds": self.args.grace}}}})
        if status in (200, 201):
            self.replicaset_uid = body.get("metadata", {}).get("uid")
        return self.replicaset_uid is not None

    def choose_node(self):
        status, body = self.api.call("GET", "/api/v1/nodes")
        if status != 200:
            return None
        def usable(node):
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in node.get("status", {}).get("conditions", []))
            return ready and not node.get("spec", {}).get("unschedulable", False)
        nodes = [n for n in body.get("items", []) if usable(n)]
        names = [n["metadata"]["name"] for n in nodes]
        if self.args.node in names and self.starts == 0:
            return self.args.node
        control = sorted(n["metadata"]["name"] for n in nodes
                         if "node-role.kubernetes.io/control-plane" in n["metadata"].get("labels", {}))
        return (control or sorted(names) or [None])[0]

    def create_pod(self):
        if not self.replicaset_uid and not self.ensure_replicaset():
            return False
        node = self.choose_node()
        if node is None:
            return False
        name = f"{REPLICA_SET}-{os.urandom(3).hex()[:5]}"
        status, _ = self.api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", {
            "metadata": {"name": name, "labels": LABELS, "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": REPLICA_SET, "uid": self.replicaset_uid,
                "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": self.args.grace,
                     "containers": [{"name": "k8s-upgrade", "image": "k8s-upgrade"}]},
            "status": {"phase": "Pending"}})
        if status not in (200, 201):
            return False
        self.pod, self.node, self.ready = name, node, False
        say(f"pod {name} scheduled on {node}")
        self.start_process()
        return True

    # -- the kubelet

    def store_path(self):
        if self.args.volume == "node-local":
            folder = self.bed / "orchestrator-volume" / self.node
        else:
            folder = self.bed / "orchestrator-volume" / "shared"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / "jobs.sqlite")

    def start_process(self):
        self.store = self.store_path()
        env = dict(os.environ, POD_NAME=self.pod, POD_NAMESPACE=NAMESPACE, NODE_NAME=self.node)
        command = [self.args.binary, *self.serve, "--listen", f"127.0.0.1:{self.args.port}", "--store", self.store]
        log = open(self.bed / "logs" / "orchestrator.log", "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        self.starts += 1
        self.ready = False
        say(f"pod {self.pod} on {self.node}: started k8s-upgrade serve, pid {self.process.pid}, store {self.store}")
        self.write_state()

    def write_state(self):
        state = {"pod": self.pod, "node": self.node, "pid": self.process.pid if self.process else None,
                 "starts": self.starts, "store": self.store, "ready": self.ready}
        path = self.bed / "orchestrator-pod.json"
        path.with_suffix(".tmp").write_text(json.dumps(state))
        os.replace(path.with_suffix(".tmp"), path)

    def mark_ready(self):
        status, _ = self.api.call(
            "PATCH", f"/api/v1/namespaces/{NAMESPACE}/pods/{self.pod}/status",
            {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
            "application/merge-patch+json")
        if status == 200:
            self.ready = True
            say(f"pod {self.pod} Ready")
            self.write_state()

    def step(self):
        if self.pod is None:
            if time.time() >= self.next_start:
                self.create_pod()
            return
        status, pod = self.api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{self.pod}")
        gone = status == 404
        deleting = gone or (status == 200 and pod.get("metadata", {}).get("deletionTimestamp"))
        if deleting and self.terminating_since is None:
            self.terminating_since = time.time()
            grace = pod.get("metadata", {}).get("deletionGracePeriodSeconds", self.args.grace) if not gone else 0
            self.grace = float(grace)
            say(f"pod {self.pod} {'gone' if gone else 'deleted'}: SIGTERM to pid {self.process.pid}, "
                f"grace {self.grace:g} s")
            self.process.send_signal(signal.SIGTERM)
        if self.terminating_since is not None:
            if self.process.poll() is None and time.time() >= self.terminating_since + self.grace:
                say(f"pod {self.pod}: grace period over, SIGKILL to pid {self.process.pid}")
                self.process.kill()
            if self.process.poll() is not None:
                say(f"pod {self.pod}: pid {self.process.pid} ended ({self.process.returncode}) after "
                    f"{time.time() - self.terminating_since:.1f} s; replacement in {self.args.restart_delay:g} s")
                self.pod, self.terminating_since = None, None
                self.next_start = time.time() + self.args.restart_delay
            return
        if self.process.poll() is not None:
            # The container died on its own: restartPolicy Always, same pod, same node, same volume.
            say(f"pod {self.pod}: pid {self.process.pid} exited ({self.process.returncode}); "
                f"container restart in {self.args.restart_delay:g} s")
            time.sleep(self.args.restart_delay)
            self.start_process()
            return
        if not self.ready and listening(self.args.port):
            self.mark_ready()

    def run(self):
        self.next_start = 0
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        while not self.stopping:
            try:
                self.step()
            except (OSError, ValueError) as error:  # the API is away (an outage): try again
                say(f"API unreachable: {error}")
            time.sleep(0.1)
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--args-file", required=True, help="the serve arguments (JSON list)")
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--port", type=int, required=True, help="the port every replacement listens on (the Service)")
    parser.add_argument("--node", required=True, help="node of the first pod")
    parser.add_argument("--grace", type=int, default=10, help="terminationGracePeriodSeconds")
    parser.add_argument("--restart-delay", type=float, default=1.0)
    parser.add_argument("--volume", choices=["shared", "node-local"], default="shared")
    args = parser.parse_args()
    Supervisor(args).run()
    sys.exit(0)


if __name__ == "__main__":
    main()
