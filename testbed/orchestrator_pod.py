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

After a deletion, as a ReplicaSet does, a replacement pod starts after
--restart-delay seconds on a schedulable node while the old one is still
terminating: on the same store, or, with --volume node-local, on an empty
one when it lands on another node (a node-local volume does not move). Each
pod's process listens on a port of its own; the Service (--port) forwards
to the newest pod that is Ready (GET /readyz answers 200), and to none
while no pod is, as kube-proxy does with a Service's endpoints.

Every start, stop and kill is a line in DIR/logs/orchestrator-pod.log, and
DIR/orchestrator-pod.json says what the newest pod runs: {pod, node, pid,
starts, store, ready}, `starts` counting every process start. SIGTERM to
this process stops the orchestrators and exits.
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
import threading
import time
import urllib.error
import urllib.request

from serving import free_port, pipe

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


def ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=0.5) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Service:
    """The Service in front of the pods: new connections go to the newest
    Ready pod's port (`target`), or are closed while there is none."""

    def __init__(self, port):
        self.target = None
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(128)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            target = self.target
            try:
                if target is None:
                    raise OSError("no endpoint")
                upstream = socket.create_connection(("127.0.0.1", target), timeout=2)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(source, sink), daemon=True).start()


class Pod:
    """One pod of the ReplicaSet and its container's process."""

    def __init__(self, name, node):
        self.name, self.node = name, node
        self.process = None
        self.port = free_port()
        self.ready = False
        self.store = None
        self.terminating_since = None
        self.grace = 0.0


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
        self.pod = None  # the newest pod, not terminating
        self.terminating = []  # older pods, their processes still stopping
        self.starts = 0
        self.stopping = False
        self.replicaset_uid = None
        self.service = Service(args.port)

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
        self.pod = Pod(name, node)
        say(f"pod {name} scheduled on {node}")
        self.start_process(self.pod)
        return True

    # -- the kubelet

    def store_path(self, pod):
        if self.args.volume == "node-local":
            folder = self.bed / "orchestrator-volume" / pod.node
        else:
            folder = self.bed / "orchestrator-volume" / "shared"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / "jobs.sqlite")

    def start_process(self, pod):
        pod.store = self.store_path(pod)
        env = dict(os.environ, POD_NAME=pod.name, POD_NAMESPACE=NAMESPACE, NODE_NAME=pod.node)
        command = [self.args.binary, *self.serve, "--listen", f"127.0.0.1:{pod.port}", "--store", pod.store]
        log = open(self.bed / "logs" / "orchestrator.log", "ab")
        pod.process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        self.starts += 1
        pod.ready = False
        say(f"pod {pod.name} on {pod.node}: started k8s-upgrade serve, pid {pod.process.pid}, port {pod.port}, "
            f"store {pod.store}")
        self.route()

    def route(self):
        """Points the Service at the newest Ready pod and writes the state file."""
        pod = self.pod
        self.service.target = pod.port if pod and pod.ready else None
        state = {"pod": pod.name if pod else None, "node": pod.node if pod else None,
                 "pid": pod.process.pid if pod and pod.process else None, "starts": self.starts,
                 "store": pod.store if pod else None, "ready": bool(pod and pod.ready),
                 "terminating": [old.name for old in self.terminating]}
        path = self.bed / "orchestrator-pod.json"
        path.with_suffix(".tmp").write_text(json.dumps(state))
        os.replace(path.with_suffix(".tmp"), path)

    def mark_ready(self, pod):
        status, _ = self.api.call(
            "PATCH", f"/api/v1/namespaces/{NAMESPACE}/pods/{pod.name}/status",
            {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
            "application/merge-patch+json")
        if status == 200:
            pod.ready = True
            say(f"pod {pod.name} Ready")
            self.route()

    def stop_terminating(self):
        """SIGKILL after the grace period; forget pods whose process ended."""
        for old in list(self.terminating):
            if old.process.poll() is None and time.time() >= old.terminating_since + old.grace:
                say(f"pod {old.name}: grace period over, SIGKILL to pid {old.process.pid}")
                old.process.kill()
            if old.process.poll() is not None:
                say(f"pod {old.name}: pid {old.process.pid} ended ({old.process.returncode}) after "
                    f"{time.time() - old.terminating_since:.1f} s")
                self.terminating.remove(old)
                self.route()

    def step(self):
        self.stop_terminating()
        if self.pod is None:
            if time.time() >= self.next_start:
                self.create_pod()
            return
        pod = self.pod
        status, body = self.api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{pod.name}")
        gone = status == 404
        if gone or (status == 200 and body.get("metadata", {}).get("deletionTimestamp")):
            pod.terminating_since = time.time()
            pod.grace = 0.0 if gone else float(body.get("metadata", {}).get("deletionGracePeriodSeconds",
                                                                              self.args.grace))
            say(f"pod {pod.name} {'gone' if gone else 'deleted'}: SIGTERM to pid {pod.process.pid}, "
                f"grace {pod.grace:g} s; replacement in {self.args.restart_delay:g} s")
            pod.process.send_signal(signal.SIGTERM)
            # The ReplicaSet replaces a terminating pod at once: both run for a while.
            self.terminating.append(pod)
            self.pod = None
            self.next_start = time.time() + self.args.restart_delay
            self.route()
            return
        if pod.process.poll() is not None:
            # The container died on its own: restartPolicy Always, same pod, same node, same volume.
            say(f"pod {pod.name}: pid {pod.process.pid} exited ({pod.process.returncode}); "
                f"container restart in {self.args.restart_delay:g} s")
            pod.ready = False
            self.route()
            time.sleep(self.args.restart_delay)
            self.start_process(pod)
            return
        if not pod.ready and ready(pod.port):
            self.mark_ready(pod)

    def run(self):
        self.next_start = 0
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        while not self.stopping:
            try:
                self.step()
            except (OSError, ValueError) as error:  # the API is away (an outage): try again
                say(f"API unreachable: {error}")
            time.sleep(0.1)
        processes = [p.process for p in self.terminating + ([self.pod] if self.pod else []) if p.process]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--args-file", required=True, help="the serve arguments (JSON list)")
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--port", type=int, required=True, help="the Service's port, forwarded to the newest Ready pod")
    parser.add_argument("--node", required=True, help="node of the first pod")
    parser.add_argument("--grace", type=int, default=10, help="terminationGracePeriodSeconds")
    parser.add_argument("--restart-delay", type=float, default=1.0)
    parser.add_argument("--volume", choices=["shared", "node-local"], default="shared")
    args = parser.parse_args()
    Supervisor(args).run()
    sys.exit(0)


if __name__ == "__main__":
    main()
