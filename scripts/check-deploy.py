#!/usr/bin/env python3
"""Validates deploy/ as an operator would apply it.

- `kubectl kustomize deploy/` renders, and with the deploy/k3s component;
- every rendered object validates against the Kubernetes OpenAPI schemas
  (kubernetes-validate, strict: unknown fields are errors), and the
  PrometheusRule against the prometheus-operator CRD's schema for spec;
- the properties the product promises hold: the CronJob's schedule and
  policies, one Recreate replica with probes on the health endpoints, non-root
  and read-only containers, RBAC with exactly the pipeline's verbs and no
  wildcard or cluster-admin, every Secret named in kustomization.yaml;
- a ServiceMonitor (its CRD's schema) scrapes the orchestrator's Service
  with the API token Secret;
- the Dockerfile is multi-stage, runs as a non-root user and copies only
  paths that exist.

A broken manifest is fed to the same validator first, so the check is seen to
fail when it should.
"""
import copy
import pathlib
import re
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBERNETES = "1.34.0"
problems = []


def problem(text):
    problems.append(text)


# The PrometheusRule CRD's spec schema (prometheus-operator v0.84,
# monitoring.coreos.com_prometheusrules.yaml), without descriptions.
DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
PROMETHEUS_RULE_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"groups": {"type": "array", "items": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "interval": {"type": "string", "pattern": DURATION},
            "query_offset": {"type": "string", "pattern": DURATION},
            "limit": {"type": "integer"},
            "partial_response_strategy": {"type": "string", "pattern": "^([Aa][Bb][Oo][Rr][Tt]|[Ww][Aa][Rr][Nn])?$"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "rules": {"type": "array", "items": {
                "type": "object", "required": ["expr"], "additionalProperties": False,
                "properties": {
                    "alert": {"type": "string"}, "record": {"type": "string"},
                    "expr": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "for": {"type": "string", "pattern": DURATION},
                    "keep_firing_for": {"type": "string", "minLength": 1, "pattern": DURATION},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                }}},
        }}}},
}


# The ServiceMonitor CRD's spec schema (prometheus-operator v0.84,
# monitoring.coreos.com_servicemonitors.yaml), the fields used here.
SECRET_KEY = {"type": "object", "required": ["key"], "additionalProperties": False,
              "properties": {"name": {"type": "string"}, "key": {"type": "string"},
                             "optional": {"type": "boolean"}}}
SERVICE_MONITOR_SPEC = {
    "type": "object",
    "required": ["selector"],
    "additionalProperties": False,
    "properties": {
        "selector": {"type": "object", "additionalProperties": False, "properties": {
            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
            "matchExpressions": {"type": "array"}}},
        "namespaceSelector": {"type": "object", "additionalProperties": False, "properties": {
            "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}},
        "jobLabel": {"type": "string"},
        "endpoints": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "port": {"type": "string"}, "targetPort": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "path": {"type": "string"}, "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                "interval": {"type": "string", "pattern": DURATION},
                "scrapeTimeout": {"type": "string", "pattern": DURATION},
                "honorLabels": {"type": "boolean"},
                "authorization": {"type": "object", "additionalProperties": False, "properties": {
                    "type": {"type": "string"}, "credentials": SECRET_KEY}},
            }}},
    },
}


def validate(obj):
    """The validator's complaint about one object, or None."""
    if obj.get("kind") == "ServiceMonitor":
        try:
            jsonschema.validate(obj.get("spec"), SERVICE_MONITOR_SPEC)
        except jsonschema.ValidationError as error:
            return f"ServiceMonitor spec: {error.message} at {list(error.absolute_path)}"
        return None
    if obj.get("kind") == "PrometheusRule":
        try:
            jsonschema.validate(obj.get("spec"), PROMETHEUS_RULE_SPEC)
        except jsonschema.ValidationError as error:
            return f"PrometheusRule spec: {error.message} at {list(error.absolute_path)}"
        return None
    try:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as error:
        return str(getattr(error, "message", error))
    return None


rendered_text = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True)
if rendered_text.returncode != 0:
    sys.exit(f"kubectl kustomize deploy/ failed:\n{rendered_text.stderr}")
rendered = [doc for doc in yaml.safe_load_all(rendered_text.stdout) if doc]
by_kind = {}
for obj in rendered:
    by_kind.setdefault(obj["kind"], []).append(obj)

# The validator must reject what is wrong before it is trusted with what is right.
deployment = by_kind["Deployment"][0]
for mutate, what in (
        (lambda d: d["spec"].__setitem__("replicas", "one"), "a string replica count"),
        (lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__("imagePullPolice", "Always"),
         "an unknown field"),
        (lambda d: d["spec"].pop("selector"), "a missing selector")):
    broken = copy.deepcopy(deployment)
    mutate(broken)
    if validate(broken) is None:
        sys.exit(f"the validator accepted a Deployment with {what}: it cannot be trusted")
broken_monitor = copy.deepcopy(by_kind["ServiceMonitor"][0])
broken_monitor["spec"]["endpoints"][0]["bearerTokenFile"] = "/token"
if validate(broken_monitor) is None:
    sys.exit("the validator accepted a ServiceMonitor with an unknown endpoint field")
broken_rule = copy.deepcopy(by_kind["PrometheusRule"][0])
broken_rule["spec"]["groups"][0]["rules"][0]["for"] = "30 minutes"
if validate(broken_rule) is None:
    sys.exit("the validator accepted a PrometheusRule with for: '30 minutes'")

for obj in rendered:
    complaint = validate(obj)
    if complaint:
        problem(f"{obj['kind']}/{obj['metadata']['name']}: {complaint}")
    if obj["kind"] != "Namespace" and obj["kind"] not in ("ClusterRole", "ClusterRoleBinding") \
            and obj["metadata"].get("namespace") != "k8s-upgrade":
        problem(f"{obj['kind']}/{obj['metadata']['name']} is not in the k8s-upgrade namespace")

# The files, each on its own too (an operator may apply one without kustomize).
for path in sorted(DEPLOY.glob("*.yaml")):
    if path.name == "kustomization.yaml":
        continue
    for obj in yaml.safe_load_all(path.read_text()):
        if obj and (complaint := validate(obj)):
            problem(f"{path.name}: {obj['kind']}/{obj['metadata']['name']}: {complaint}")


def pod_spec(obj):
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


cronjob = by_kind["CronJob"][0]
expect = {"schedule": "0 12 * * 0", "concurrencyPolicy": "Forbid"}
for key, value in expect.items():
    if cronjob["spec"].get(key) != value:
        problem(f"CronJob {key} is {cronjob['spec'].get(key)!r}, want {value!r}")
for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
    if key not in cronjob["spec"]:
        problem(f"CronJob has no {key}")
if deployment["spec"].get("replicas") != 1 or deployment["spec"].get("strategy", {}).get("type") != "Recreate":
    problem("the orchestrator must be one replica with the Recreate strategy")
container = pod_spec(deployment)["containers"][0]
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    if container.get(probe, {}).get("httpGet", {}).get("path") != path:
        problem(f"the orchestrator's {probe} must GET {path}")
# The job store and the snapshot copies each on a PersistentVolumeClaim of its own.
env = {e["name"]: e.get("value") for e in container.get("env", [])}
claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
          for v in pod_spec(deployment)["volumes"] if v.get("persistentVolumeClaim")}


def claim_of(path):
    mounts = [m for m in container.get("volumeMounts", []) if path and path.startswith(m["mountPath"].rstrip("/") + "/")]
    deepest = max(mounts, key=lambda m: len(m["mountPath"]), default=None)
    return claims.get(deepest["name"]) if deepest else None


store_claim = claim_of(env.get("K8SUP_STORE"))
copy_claim = claim_of((env.get("K8SUP_BACKUP_COPY_DIR") or "") + "/x")
if not store_claim:
    problem("the orchestrator's job store is not on a PersistentVolumeClaim")
if not copy_claim or copy_claim == store_claim:
    problem("the snapshot copies (K8SUP_BACKUP_COPY_DIR) are not on a PersistentVolumeClaim of their own")

kustomization = (DEPLOY / "kustomization.yaml").read_text()
declared = set(re.search(r"^# secrets: (.*)$", kustomization, re.M).group(1).split())
for obj in (cronjob, deployment):
    spec = pod_spec(obj)
    security = spec.get("securityContext", {})
    if not security.get("runAsNonRoot") or security.get("runAsUser", 0) == 0:
        problem(f"{obj['kind']} does not run as a non-root user")
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False \
                or sc.get("capabilities", {}).get("drop") != ["ALL"]:
            problem(f"{obj['kind']} container {c['name']}: read-only root, no privilege escalation, drop ALL")
        if "limits" not in c.get("resources", {}) or "requests" not in c.get("resources", {}):
            problem(f"{obj['kind']} container {c['name']} has no resource requests and limits")
        for env in c.get("env", []):
            if "valueFrom" not in env and re.search(r"TOKEN$|WEBHOOK$|PASSWORD|SECRET", env["name"]):
                problem(f"{obj['kind']}: {env['name']} puts a secret in the environment; mount it as a file")
    for volume in spec["volumes"]:
        if "secret" in volume and volume["secret"]["secretName"] not in declared:
            problem(f"{obj['kind']} mounts Secret {volume['secret']['secretName']}, "
                    "which kustomization.yaml does not name")

# The ServiceMonitor scrapes the orchestrator's Service by its labels and
# port, with the API token from the Secret the service reads it from.
service = by_kind["Service"][0]
for monitor in by_kind.get("ServiceMonitor", []):
    selector = monitor["spec"]["selector"].get("matchLabels", {})
    if any(service["metadata"].get("labels", {}).get(k) != v for k, v in selector.items()):
        problem(f"ServiceMonitor/{monitor['metadata']['name']} does not select Service/{service['metadata']['name']}")
    ports = {p.get("name") for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"].get("endpoints", []):
        if endpoint.get("port") not in ports:
            problem(f"ServiceMonitor endpoint port {endpoint.get('port')} is not a port of the Service")
        secret = endpoint.get("authorization", {}).get("credentials", {}).get("name")
        if endpoint.get("path") == "/metrics" and secret not in declared:
            problem("ServiceMonitor scrapes /metrics without the API token Secret kustomization.yaml names")
if not by_kind.get("ServiceMonitor"):
    problem("no ServiceMonitor scrapes the orchestrator's /metrics")


def rules(kind, name):
    found = [o for o in by_kind.get(kind, []) if o["metadata"]["name"] == name]
    if not found:
        problem(f"{kind}/{name} is missing")
        return set()
    return {(group, resource, tuple(sorted(r.get("resourceNames", []))), verb)
            for r in found[0]["rules"] for group in r["apiGroups"] for resource in r["resources"]
            for verb in r["verbs"]}


def want(*entries):
    return {(g, r, tuple(n), v) for g, r, n, verbs in entries for v in verbs}


EXPECTED_RBAC = {
    ("ClusterRole", "k8s-version-check"): want(("", "nodes", [], ["get", "list"])),
    ("ClusterRole", "k8s-upgrade"): want(
        ("", "nodes", [], ["get", "list", "patch"]), ("", "pods", [], ["get", "list"]),
        ("", "pods/eviction", [], ["create"]), ("policy", "poddisruptionbudgets", [], ["get", "list"]),
        ("apps", "daemonsets", [], ["get"]), ("", "namespaces", ["k8s-upgrade"], ["get", "patch"]),
        ("upgrade.cattle.io", "plans", [], ["list"]), ("k3s.cattle.io", "etcdsnapshotfiles", [], ["list"])),
    # The orchestrator's leader lease (LeaderLease.swift), in its own namespace only.
    ("Role", "k8s-upgrade"): want(
        ("coordination.k8s.io", "leases", [], ["create"]),
        ("coordination.k8s.io", "leases", ["k8s-upgrade"], ["get", "update"])),
}
# No other namespaced Role: neither binary calls a namespaced API beyond the above.
for kind in ("Role", "RoleBinding"):
    for obj in by_kind.get(kind, []):
        if obj["metadata"]["name"] != "k8s-upgrade" or obj["metadata"].get("namespace") != "k8s-upgrade":
            problem(f"{kind}/{obj['metadata']['name']} grants what no code path uses")
for (kind, name), expected in EXPECTED_RBAC.items():
    actual = rules(kind, name)
    if actual != expected:
        problem(f"{kind}/{name}: extra {sorted(actual - expected)}, missing {sorted(expected - actual)}")
for obj in by_kind.get("ClusterRoleBinding", []) + by_kind.get("RoleBinding", []):
    if obj["roleRef"]["name"] in ("cluster-admin", "admin", "edit"):
        problem(f"{obj['kind']}/{obj['metadata']['name']} binds {obj['roleRef']['name']}")
for obj in by_kind.get("ClusterRole", []) + by_kind.get("Role", []):
    for rule in obj["rules"]:
        if "*" in rule["verbs"] + rule["resources"] + rule["apiGroups"]:
            problem(f"{obj['kind']}/{obj['metadata']['name']} has a wildcard rule")
images = {c["image"] for o in (cronjob, deployment) for c in pod_spec(o)["containers"]}
if len(images) != 1 or not re.search(r":[\w.-]+$", next(iter(images))):
    problem(f"both workloads should run the one tagged image named in kustomization.yaml, got {sorted(images)}")

# deploy/k3s/, the Component for K3s clusters, as an operator's own
# kustomization uses it: the same objects, valid, with the same RBAC, both
# binaries told the nodes run K3s.
site = ROOT / ".build" / "check-deploy-k3s"
site.mkdir(parents=True, exist_ok=True)
(site / "kustomization.yaml").write_text("resources:\n- ../../deploy\ncomponents:\n- ../../deploy/k3s\n")
k3s_text = subprocess.run(["kubectl", "kustomize", str(site)], capture_output=True, text=True)
if k3s_text.returncode != 0:
    sys.exit(f"kubectl kustomize with the deploy/k3s component failed:\n{k3s_text.stderr}")
k3s_rendered = [doc for doc in yaml.safe_load_all(k3s_text.stdout) if doc]
if sorted((o["kind"], o["metadata"]["name"]) for o in k3s_rendered) != \
        sorted((o["kind"], o["metadata"]["name"]) for o in rendered):
    problem("the deploy/k3s component adds or removes objects")
for obj in k3s_rendered:
    if complaint := validate(obj):
        problem(f"deploy/k3s: {obj['kind']}/{obj['metadata']['name']}: {complaint}")
    if obj["kind"] in ("ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding"):
        base = next(o for o in rendered if o["kind"] == obj["kind"] and o["metadata"]["name"] == obj["metadata"]["name"])
        if obj != base:
            problem(f"deploy/k3s changes {obj['kind']}/{obj['metadata']['name']}: K3s needs no other permission")
    if obj["kind"] in ("CronJob", "Deployment"):
        env = {e["name"]: e.get("value") for c in pod_spec(obj)["containers"] for e in c.get("env", [])}
        if env.get("K8SUP_DISTRIBUTION") != "k3s":
            problem(f"deploy/k3s: {obj['kind']} runs with K8SUP_DISTRIBUTION={env.get('K8SUP_DISTRIBUTION')}")

dockerfile = (ROOT / "Dockerfile").read_text()
stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
if len(stages) < 2:
    problem("the Dockerfile is not multi-stage")
users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
if not users or users[-1].split(":")[0] in ("0", "root"):
    problem("the Dockerfile's final image does not run as a non-root user")
if "--static-swift-stdlib" not in dockerfile:
    problem("the Dockerfile does not link the Swift runtime statically")
for line in re.findall(r"^COPY\s+(?!--from)(.*)$", dockerfile, re.M):
    for source in line.split()[:-1]:
        if not (ROOT / source).exists():
            problem(f"the Dockerfile copies {source}, which does not exist")

if problems:
    print("deploy/ problems:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"deploy/ renders and validates against Kubernetes {KUBERNETES}: "
      f"{len(rendered)} objects ({', '.join(sorted(by_kind))}); RBAC, policies and Dockerfile as promised")
