import Foundation
import Shared

/// The resources the simulator serves.
enum Resource: String, CaseIterable, Sendable {
    case nodes, pods, namespaces, poddisruptionbudgets, daemonsets, replicasets, leases
    /// Kept in etcd when the simulator is given one (`--etcd-endpoint`),
    /// as an API server keeps its objects: what a snapshot restore changes.
    case configmaps
    /// system-upgrade-controller's Plans, served only where its CRD is
    /// installed (`--crd plans.upgrade.cattle.io`).
    case plans
    /// K3s' record of each etcd snapshot (cluster-scoped), served only
    /// where K3s installed its CRD (`--crd etcdsnapshotfiles.k3s.cattle.io`).
    case etcdsnapshotfiles

    var isNamespaced: Bool { ![.nodes, .namespaces, .etcdsnapshotfiles].contains(self) }

    /// `plural.group` of a custom resource, served only with its CRD; `nil` for built-in kinds.
    var customResourceName: String? {
        switch self {
        case .plans: "plans.upgrade.cattle.io"
        case .etcdsnapshotfiles: "etcdsnapshotfiles.k3s.cattle.io"
        default: nil
        }
    }

    /// The custom resources the simulator can serve, as `--crd` names them.
    static let customResourceNames = allCases.compactMap(\.customResourceName)

    var kind: String {
        switch self {
        case .nodes: "Node"
        case .pods: "Pod"
        case .namespaces: "Namespace"
        case .poddisruptionbudgets: "PodDisruptionBudget"
        case .daemonsets: "DaemonSet"
        case .replicasets: "ReplicaSet"
        case .leases: "Lease"
        case .configmaps: "ConfigMap"
        case .plans: "Plan"
        case .etcdsnapshotfiles: "ETCDSnapshotFile"
        }
    }

    var apiVersion: String {
        switch self {
        case .nodes, .pods, .namespaces, .configmaps: "v1"
        case .poddisruptionbudgets: "policy/v1"
        case .daemonsets, .replicasets: "apps/v1"
        case .leases: "coordination.k8s.io/v1"
        case .plans: "upgrade.cattle.io/v1"
        case .etcdsnapshotfiles: "k3s.cattle.io/v1"
        }
    }
}

/// An API error, rendered as a Kubernetes `Status`.
struct APIError: Error {
    let code: Int
    let reason: String
    let message: String
    var details: JSONValue? = nil
    var retryAfterSeconds: Int? = nil

    static func notFound(_ resource: Resource, _ name: String) -> APIError {
        APIError(
            code: 404, reason: "NotFound", message: "\(resource.rawValue) \"\(name)\" not found",
            details: .object(["name": .string(name), "kind": .string(resource.rawValue)]))
    }

    static func badRequest(_ message: String) -> APIError {
        APIError(code: 400, reason: "BadRequest", message: message)
    }
}

/// The state of the simulated cluster and the controllers that move it,
/// behind one actor. Objects are JSON trees keyed `namespace/name` (or
/// `name` for cluster-scoped kinds).
actor ClusterStore {
    private var objects: [Resource: [String: JSONValue]] = [:]
    private var resourceVersion = 1000
    /// When each not-yet-ready pod turns Ready.
    private var readyAt: [String: Date] = [:]
    /// The resource version the last pass of the controllers left, and the
    /// earliest time one of them waits for (``reconcile(now:)``).
    private var reconciledVersion: Int?
    private var nextDue: Date?
    /// Each resource's keys in order, as of a resource version (``page``).
    private var keyOrder: [Resource: (version: Int, keys: [String])] = [:]
    /// Each listed object's JSON text, as of its resource version (``pageJSON``).
    private var encoded: [Resource: [String: (version: String, bytes: [UInt8])]] = [:]
    private let scenario: Scenario
    private let neverReady: Set<String>
    /// The simulated cluster's time: the machine's, or a test's clock.
    private let clock: @Sendable () -> Date

    init(scenario: Scenario, clock: @escaping @Sendable () -> Date = { Date() }) async {
        self.scenario = scenario
        self.clock = clock
        self.neverReady = Set(scenario.faults.neverReadyNodes)
        for resource in Resource.allCases { objects[resource] = [:] }
        load(scenario)
    }

    /// Runs `change` as a request with `dryRun=All` asks: validated and
    /// answered as if it were made (admission, budgets, the eviction's
    /// checks), then every object is put back, so nothing persists, as the
    /// API server answers a dry run. Without `dryRun` the change stays.
    func perform<T: Sendable>(
        dryRun: Bool, _ change: @Sendable (isolated ClusterStore) throws -> T
    ) throws -> T {
        guard dryRun else { return try change(self) }
        // The resource version moves on (versions are never given twice,
        // so an object's version names one content: ``pageJSON``'s cache).
        let saved = (objects, readyAt)
        defer { (objects, readyAt) = saved }
        return try change(self)
    }

    // MARK: - Reading

    func list(_ resource: Resource, namespace: String?) -> [(key: String, object: JSONValue)] {
        (objects[resource] ?? [:]).filter { key, _ in
            guard let namespace else { return true }
            return key.hasPrefix(namespace + "/")
        }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// One page of a list, in key order: the objects after key `after`
    /// that `keep` keeps, at most `limit`; the key to continue after when
    /// more are left, and how many keys are left after the page. The keys'
    /// order is kept between changes, and a page is found by bisection, so
    /// paging through 50,000 pods does not sort them once per page.
    func page(
        _ resource: Resource, namespace: String?, after: String?, limit: Int?,
        keep: @Sendable (JSONValue) -> Bool
    ) -> (items: [(key: String, object: JSONValue)], continueAfter: String?, remaining: Int) {
        let keys = sortedKeys(resource)
        let prefix = namespace.map { $0 + "/" }
        func firstIndex(after bound: String, inclusive: Bool) -> Int {
            var (low, high) = (0, keys.count)
            while low < high {
                let middle = (low + high) / 2
                if inclusive ? keys[middle] < bound : keys[middle] <= bound { low = middle + 1 } else { high = middle }
            }
            return low
        }
        var index = max(
            after.map { firstIndex(after: $0, inclusive: false) } ?? 0,
            prefix.map { firstIndex(after: $0, inclusive: true) } ?? 0)
        var items: [(key: String, object: JSONValue)] = []
        let objects = objects[resource] ?? [:]
        while index < keys.count {
            let key = keys[index]
            if let prefix, !key.hasPrefix(prefix) { break }
            if let limit, items.count == limit {
                let end = prefix.map { firstIndex(after: $0 + "\u{10FFFF}", inclusive: true) } ?? keys.count
                return (items, items.last?.key, end - index)
            }
            index += 1
            guard let object = objects[key], keep(object) else { continue }
            items.append((key, object))
        }
        return (items, nil, 0)
    }

    /// ``page`` as JSON text: the items (without `kind` and `apiVersion`,
    /// as a list's items are) joined by commas, each written once per
    /// version of the object and kept, so a page of 500 pods costs a copy.
    func pageJSON(
        _ resource: Resource, namespace: String?, after: String?, limit: Int?,
        keep: @Sendable (JSONValue) -> Bool
    ) -> (items: [UInt8], count: Int, continueAfter: String?, remaining: Int) {
        let page = page(resource, namespace: namespace, after: after, limit: limit, keep: keep)
        var bytes: [UInt8] = []
        for (index, item) in page.items.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            let version = item.object[["metadata", "resourceVersion"]]?.stringValue ?? ""
            if let cached = encoded[resource]?[item.key], cached.version == version {
                bytes += cached.bytes
                continue
            }
            var object = item.object
            object[["kind"]] = nil
            object[["apiVersion"]] = nil
            let text = object.jsonBytes
            encoded[resource, default: [:]][item.key] = (version, text)
            bytes += text
        }
        return (bytes, page.items.count, page.continueAfter, page.remaining)
    }

    /// A resource's keys in order, sorted again only after a change.
    private func sortedKeys(_ resource: Resource) -> [String] {
        if let cached = keyOrder[resource], cached.version == resourceVersion { return cached.keys }
        let keys = (objects[resource] ?? [:]).keys.sorted()
        keyOrder[resource] = (resourceVersion, keys)
        if let cached = encoded[resource], cached.count > keys.count {
            encoded[resource] = cached.filter { objects[resource]?[$0.key] != nil }
        }
        return keys
    }

    func get(_ resource: Resource, namespace: String?, name: String) throws(APIError) -> JSONValue {
        guard let object = objects[resource]?[Self.key(namespace, name)] else { throw .notFound(resource, name) }
        return object
    }

    var currentResourceVersion: String { String(resourceVersion) }

    /// Every object of `resource` becomes `objects` (what the datastore
    /// holds, read again), keeping their own resource versions.
    func replaceAll(_ resource: Resource, with objects: [JSONValue]) {
        var fresh: [String: JSONValue] = [:]
        for object in objects {
            guard let name = object[["metadata", "name"]]?.stringValue else { continue }
            fresh[Self.key(object[["metadata", "namespace"]]?.stringValue, name)] = object
        }
        guard self.objects[resource] != fresh else { return }
        self.objects[resource] = fresh
        // What etcd holds moved under the store: lists and their kept text follow.
        bump()
        encoded[resource] = nil
        // Versions read back from etcd count: none is given twice.
        for object in objects {
            if let version = object[["metadata", "resourceVersion"]]?.stringValue.flatMap(Int.init) {
                resourceVersion = max(resourceVersion, version)
            }
        }
    }

    /// Deletes an object at once (no grace period); 404 when it is not there.
    func remove(_ resource: Resource, namespace: String?, name: String) throws(APIError) -> JSONValue {
        guard let object = objects[resource]?.removeValue(forKey: Self.key(namespace, name)) else {
            throw .notFound(resource, name)
        }
        bump()
        return object
    }

    /// The API server version clients see: the first control plane's.
    var apiServerVersion: String {
        let controlPlanes = list(.nodes, namespace: nil).filter { Self.isControlPlane($0.object) }
        guard let first = controlPlanes.first else { return "v0.0.0" }
        guard let pod = objects[.pods]?["kube-system/kube-apiserver-\(first.key)"] else {
            // MicroK8s: kubelite serves the API in the kubelet's process.
            return first.object[["status", "nodeInfo", "kubeletVersion"]]?.stringValue ?? "v0.0.0"
        }
        let image = pod[["spec", "containers"]]?.arrayValue?.first?[["image"]]?.stringValue ?? ""
        return image.split(separator: ":").last.map(String.init) ?? "v0.0.0"
    }

    // MARK: - Writing

    /// Applies a merge or strategic merge patch to an object (or its status).
    func patch(
        _ resource: Resource, namespace: String?, name: String, patch: JSONValue, strategic: Bool, status: Bool
    ) throws(APIError) -> JSONValue {
        let key = Self.key(namespace, name)
        guard var object = objects[resource]?[key] else { throw .notFound(resource, name) }
        guard case .object = patch else { throw .badRequest("patch body must be a JSON object") }
        var effective = patch
        if status {
            // Only status (and metadata) may change through /status.
            effective = .object((patch.objectValue ?? [:]).filter { $0.key == "status" || $0.key == "metadata" })
        } else {
            effective[["status"]] = nil
        }
        object = strategic ? object.mergingStrategic(patch: effective) : object.merging(patch: effective)
        if resource == .nodes && status && neverReady.contains(name) {
            // This node's kubelet never comes back after a restart.
            object = Self.settingCondition(
                object, type: "Ready", status: "Unknown", reason: "NodeStatusUnknown",
                message: "Kubelet stopped posting node status.", now: clock())
        }
        object[["metadata", "name"]] = .string(name)
        store(resource, key, object)
        return object
    }

    /// Creates an object; 409 when it exists.
    func create(_ resource: Resource, namespace: String?, object: JSONValue) throws(APIError) -> JSONValue {
        guard let name = object[["metadata", "name"]]?.stringValue, !name.isEmpty else {
            throw .badRequest("metadata.name is required")
        }
        let key = Self.key(namespace, name)
        guard objects[resource]?[key] == nil else {
            throw APIError(
                code: 409, reason: "AlreadyExists", message: "\(resource.rawValue) \"\(name)\" already exists")
        }
        var object = object
        object[["metadata", "namespace"]] = namespace.map(JSONValue.string)
        object[["metadata", "uid"]] = .string(Self.newUID())
        object[["metadata", "creationTimestamp"]] = .string(Self.timestamp(clock()))
        store(resource, key, object)
        return objects[resource]![key]!
    }

    /// Replaces an object; 409 when the given resourceVersion is stale.
    func replace(
        _ resource: Resource, namespace: String?, name: String, object: JSONValue
    ) throws(APIError) -> JSONValue {
        let key = Self.key(namespace, name)
        guard let existing = objects[resource]?[key] else { throw .notFound(resource, name) }
        if let given = object[["metadata", "resourceVersion"]]?.stringValue,
            given != existing[["metadata", "resourceVersion"]]?.stringValue
        {
            throw APIError(
                code: 409, reason: "Conflict",
                message:
                    "Operation cannot be fulfilled on \(resource.rawValue) \"\(name)\": the object has been modified; "
                    + "please apply your changes to the latest version and try again")
        }
        var object = object
        object[["metadata", "uid"]] = existing[["metadata", "uid"]]
        object[["metadata", "creationTimestamp"]] = existing[["metadata", "creationTimestamp"]]
        store(resource, key, object)
        return objects[resource]![key]!
    }

    /// Deletes a pod gracefully: it gets a deletionTimestamp and lingers
    /// for its grace period, as on a real node.
    func deletePod(namespace: String, name: String, gracePeriodSeconds: Int?) throws(APIError) -> JSONValue {
        let key = Self.key(namespace, name)
        guard var pod = objects[.pods]?[key] else { throw .notFound(.pods, name) }
        if pod[["metadata", "deletionTimestamp"]] != nil { return pod }
        if pod[["metadata", "annotations", "kubernetes.io/config.mirror"]] != nil {
            // A mirror pod is the kubelet's; deleting it through the API has no lasting effect.
            return pod
        }
        let grace =
            gracePeriodSeconds ?? pod[["spec", "terminationGracePeriodSeconds"]]?.intValue
            ?? scenario.defaultGracePeriodSeconds
        if grace <= 0 {
            objects[.pods]?[key] = nil
            bump()
            return pod
        }
        pod[["metadata", "deletionTimestamp"]] = .string(Self.timestamp(clock().addingTimeInterval(Double(grace))))
        pod[["metadata", "deletionGracePeriodSeconds"]] = .number(Double(grace))
        store(.pods, key, pod)
        return pod
    }

    /// `POST …/pods/{name}/eviction` with the PodDisruptionBudget rules of
    /// the API server's eviction subresource.
    func evict(namespace: String, name: String, gracePeriodSeconds: Int?) throws(APIError) {
        let key = Self.key(namespace, name)
        guard let pod = objects[.pods]?[key] else { throw .notFound(.pods, name) }
        let phase = pod[["status", "phase"]]?.stringValue ?? "Pending"
        if pod[["metadata", "deletionTimestamp"]] != nil || ["Succeeded", "Failed", "Pending"].contains(phase) {
            _ = try deletePod(namespace: namespace, name: name, gracePeriodSeconds: gracePeriodSeconds)
            return
        }
        let labels = pod.stringMap("metadata.labels")
        // policy/v1: `{}` selects every pod of the namespace, a null selector none.
        let budgets = list(.poddisruptionbudgets, namespace: namespace).filter { _, pdb in
            LabelSelector(json: pdb[["spec", "selector"]])?.matches(labels) == true
        }
        if budgets.count > 1 {
            throw APIError(
                code: 500, reason: "InternalError",
                message:
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
        }
        guard let (budgetKey, budget) = budgets.first else {
            _ = try deletePod(namespace: namespace, name: name, gracePeriodSeconds: gracePeriodSeconds)
            return
        }
        let budgetName = budget[["metadata", "name"]]?.stringValue ?? ""
        let healthy = budget[["status", "currentHealthy"]]?.intValue ?? 0
        let desired = budget[["status", "desiredHealthy"]]?.intValue ?? 0
        if !Self.isReady(pod) && healthy >= desired && desired > 0 {
            // An unhealthy pod may go when the budget is met without it.
            _ = try deletePod(namespace: namespace, name: name, gracePeriodSeconds: gracePeriodSeconds)
            return
        }
        let allowed = budget[["status", "disruptionsAllowed"]]?.intValue ?? 0
        if allowed < 0 {
            throw APIError(code: 403, reason: "Forbidden", message: "pdb disruptions allowed is negative")
        }
        if allowed == 0 {
            throw APIError(
                code: 429, reason: "TooManyRequests",
                message: "Cannot evict pod as it would violate the pod's disruption budget.",
                details: .object([
                    "causes": .array([
                        .object([
                            "reason": .string("DisruptionBudget"),
                            "message": .string(
                                "The disruption budget \(budgetName) needs \(desired) healthy pods and has \(healthy) currently"
                            ),
                        ])
                    ])
                ]))
        }
        var updated = budget
        updated[["status", "disruptionsAllowed"]] = .number(Double(allowed - 1))
        updated[["status", "disruptedPods", name]] = .string(Self.timestamp(clock()))
        store(.poddisruptionbudgets, budgetKey, updated)
        _ = try deletePod(namespace: namespace, name: name, gracePeriodSeconds: gracePeriodSeconds)
    }

    /// Moves a control-plane node's static pods (API server, controller
    /// manager, scheduler) to `version`, as `kubeadm upgrade apply|node` does.
    func upgradeControlPlane(node: String, to version: String) throws(APIError) {
        guard let nodeObject = objects[.nodes]?[node], Self.isControlPlane(nodeObject) else {
            throw .badRequest("\(node) is not a control-plane node")
        }
        for component in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
            let key = "kube-system/\(component)-\(node)"
            guard var pod = objects[.pods]?[key] else { continue }
            pod[["spec", "containers"]] = .array([
                .object(["name": .string(component), "image": .string("registry.k8s.io/\(component):v\(version)")])
            ])
            store(.pods, key, pod)
        }
    }

    // MARK: - Controllers

    /// One pass of the simulated controllers: finish graceful deletions,
    /// bring pods Ready, keep ReplicaSets and DaemonSets at strength,
    /// schedule pending pods, recompute budgets.
    ///
    /// A pass runs only when something changed since the last one (the
    /// resource version moved) or something it waits for is due (a pod's
    /// readiness, a graceful deletion's end, a disruption's expiry): an idle
    /// cluster of 50,000 pods costs nothing between requests.
    func reconcile(now: Date? = nil) {
        let now = now ?? clock()
        if reconciledVersion == resourceVersion, nextDue.map({ $0 > now }) ?? true { return }
        let before = resourceVersion
        nextDue = nil
        finishDeletions(now: now)
        markReady(now: now)
        runReplicaSets(now: now)
        runDaemonSets(now: now)
        schedulePending(now: now)
        recomputeBudgets(now: now)
        // What this pass changed gets one more pass; then it rests.
        reconciledVersion = resourceVersion == before ? before : nil
        if let ready = readyAt.values.min() { due(ready) }
    }

    /// Notes a time a pass must run by.
    private func due(_ time: Date) { nextDue = min(nextDue ?? time, time) }

    private func finishDeletions(now: Date) {
        for (key, pod) in objects[.pods] ?? [:] {
            guard let text = pod[["metadata", "deletionTimestamp"]]?.stringValue, let due = Self.parseTimestamp(text)
            else { continue }
            guard due <= now else {
                self.due(due)
                continue
            }
            objects[.pods]?[key] = nil
            readyAt[key] = nil
            bump()
        }
    }

    private func markReady(now: Date) {
        for (key, due) in readyAt where due <= now {
            readyAt[key] = nil
            guard var pod = objects[.pods]?[key], pod[["metadata", "deletionTimestamp"]] == nil else { continue }
            pod[["status", "phase"]] = .string("Running")
            pod = Self.settingCondition(pod, type: "Ready", status: "True", reason: nil, message: nil, now: now)
            store(.pods, key, pod)
        }
    }

    private func runReplicaSets(now: Date) {
        for (rsKey, rs) in objects[.replicasets] ?? [:] {
            let namespace = String(rsKey.split(separator: "/")[0])
            let uid = rs[["metadata", "uid"]]?.stringValue
            let active = (objects[.pods] ?? [:]).values.filter {
                Self.controllerUID($0) == uid && $0[["metadata", "deletionTimestamp"]] == nil
            }
            let wanted = rs[["spec", "replicas"]]?.intValue ?? 0
            guard active.count < wanted else { continue }
            for _ in active.count..<wanted {
                let workload = Self.workload(from: rs)
                let name = "\(rs[["metadata", "name"]]?.stringValue ?? "rs")-\(Self.suffix())"
                addPod(
                    namespace: namespace, name: name, workload: workload, owner: rs, node: nil, ready: false, now: now)
            }
        }
    }

    private func runDaemonSets(now: Date) {
        let nodes = list(.nodes, namespace: nil)
        for (dsKey, ds) in objects[.daemonsets] ?? [:] {
            let namespace = String(dsKey.split(separator: "/")[0])
            let uid = ds[["metadata", "uid"]]?.stringValue
            let covered = Set(
                (objects[.pods] ?? [:]).values.filter { Self.controllerUID($0) == uid }
                    .compactMap { $0[["spec", "nodeName"]]?.stringValue })
            for (nodeName, _) in nodes where !covered.contains(nodeName) {
                let name = "\(ds[["metadata", "name"]]?.stringValue ?? "ds")-\(Self.suffix())"
                addPod(
                    namespace: namespace, name: name, workload: Self.workload(from: ds), owner: ds, node: nodeName,
                    ready: false, now: now)
            }
        }
    }

    /// Places pods without a node on the schedulable, Ready worker with the fewest pods.
    private func schedulePending(now: Date) {
        let pending = (objects[.pods] ?? [:]).filter {
            $0.value[["spec", "nodeName"]] == nil && $0.value[["metadata", "deletionTimestamp"]] == nil
        }
        guard !pending.isEmpty else { return }
        for (key, var pod) in pending.sorted(by: { $0.key < $1.key }) {
            // A pod with no node that has room stays Pending; the next may fit.
            guard let node = chooseNode(for: pod) else { continue }
            pod[["spec", "nodeName"]] = .string(node)
            store(.pods, key, pod)
            readyAt[key] = now.addingTimeInterval(scenario.readyAfterSeconds)
        }
    }

    /// The schedulable, Ready, untainted node with the fewest pods that has
    /// room for `pod`'s requests (a node without allocatable has room for any).
    private func chooseNode(for pod: JSONValue) -> String? {
        let placed = (objects[.pods] ?? [:]).values.filter { pod in
            !["Succeeded", "Failed"].contains(pod[["status", "phase"]]?.stringValue ?? "")
        }
        let counts = Dictionary(grouping: placed.compactMap { $0[["spec", "nodeName"]]?.stringValue }, by: { $0 })
            .mapValues(\.count)
        let wanted = Resources(podSpec: pod[["spec"]])
        return list(.nodes, namespace: nil).filter { name, node in
            guard
                node[["spec", "unschedulable"]]?.boolValue != true && Self.tolerates(pod, node)
                    && Self.isNodeReady(node)
            else { return false }
            guard let allocatable = NodeRoom(node: node).allocatable else { return true }
            let used = placed.filter { $0[["spec", "nodeName"]]?.stringValue == name }
                .map { Resources(podSpec: $0[["spec"]]) }.reduce(Resources(), +)
            return (allocatable - used).covers(wanted)
        }.min { (counts[$0.key] ?? 0, $0.key) < (counts[$1.key] ?? 0, $1.key) }?.key
    }

    /// The replicas the matching pods' controllers want: a ReplicaSet's
    /// `spec.replicas` once however many of its pods match, any other
    /// pod (a DaemonSet's, one without a controller) as itself.
    private func expectedScale(of pods: [JSONValue]) -> Int {
        var replicas: [String: Int] = [:]
        for rs in (objects[.replicasets] ?? [:]).values {
            guard let uid = rs[["metadata", "uid"]]?.stringValue else { continue }
            replicas[uid] = rs[["spec", "replicas"]]?.intValue ?? 0
        }
        var counted: Set<String> = []
        var total = 0
        for pod in pods {
            if let uid = Self.controllerUID(pod), let wanted = replicas[uid] {
                if counted.insert(uid).inserted { total += wanted }
            } else {
                total += 1
            }
        }
        return total
    }

    private func recomputeBudgets(now: Date) {
        for (key, budget) in objects[.poddisruptionbudgets] ?? [:] {
            let namespace = String(key.split(separator: "/")[0])
            let selector = LabelSelector(json: budget[["spec", "selector"]])
            let matching = list(.pods, namespace: namespace).map(\.object).filter { pod in
                selector?.matches(pod.stringMap("metadata.labels")) == true
            }
            var disrupted = budget[["status", "disruptedPods"]]?.objectValue ?? [:]
            let names = Set(matching.map { $0[["metadata", "name"]]?.stringValue ?? "" })
            disrupted = disrupted.filter { name, time in
                guard names.contains(name), let since = time.stringValue.flatMap(Self.parseTimestamp) else {
                    return false
                }
                return now.timeIntervalSince(since) < 120
            }
            for time in disrupted.values {
                if let since = time.stringValue.flatMap(Self.parseTimestamp) { due(since.addingTimeInterval(120)) }
            }
            let healthy = matching.filter {
                Self.isReady($0) && disrupted[$0[["metadata", "name"]]?.stringValue ?? ""] == nil
            }.count
            // As the disruption controller counts: an integer minAvailable
            // against the pods that match (terminating ones included);
            // maxUnavailable and a percentage against the scale of the
            // pods' controllers, so a replacement started while its
            // predecessor terminates does not raise what is needed.
            let minimumAvailable = Self.intOrPercent(budget[["spec", "minAvailable"]])
            let expected: Int
            switch minimumAvailable {
            case .count: expected = matching.count
            default: expected = expectedScale(of: matching)
            }
            let desired: Int
            if let minimum = minimumAvailable {
                desired = minimum.resolve(total: expected)
            } else if let maximum = Self.intOrPercent(budget[["spec", "maxUnavailable"]]) {
                desired = max(0, expected - maximum.resolve(total: expected))
            } else {
                desired = expected
            }
            let allowed = max(0, healthy - desired)
            var updated = budget
            updated[["status"]] = .object([
                "observedGeneration": budget[["metadata", "generation"]] ?? .number(1),
                "disruptionsAllowed": .number(Double(allowed)),
                "currentHealthy": .number(Double(healthy)),
                "desiredHealthy": .number(Double(desired)),
                "expectedPods": .number(Double(expected)),
                "disruptedPods": .object(disrupted),
                "conditions": .array([
                    .object([
                        "type": .string("DisruptionAllowed"), "status": .string(allowed > 0 ? "True" : "False"),
                        "reason": .string(allowed > 0 ? "SufficientPods" : "InsufficientPods"), "message": .string(""),
                        "lastTransitionTime": .string(Self.timestamp(now)),
                        "observedGeneration": budget[["metadata", "generation"]] ?? .number(1),
                    ])
                ]),
            ])
            if updated != budget { store(.poddisruptionbudgets, key, updated) }
        }
    }

    // MARK: - Building the scenario

    private func load(_ scenario: Scenario) {
        let now = clock()
        var namespaces: Set<String> = ["default", "kube-system", "kube-public", "k8s-upgrade"]
        for node in scenario.nodes {
            var labels = node.labels
            labels["kubernetes.io/hostname"] = node.name
            labels["kubernetes.io/os"] = "linux"
            for role in node.roles {
                if role.hasPrefix("microk8s-") {
                    labels["node.kubernetes.io/\(role)"] = role
                } else {
                    labels["node-role.kubernetes.io/\(role)"] = ""
                }
            }
            // kubeadm taints its control planes; MicroK8s and K3s do not.
            let taints: [String: JSONValue] =
                node.roles.contains("control-plane")
                ? [
                    "taints": .array([
                        .object([
                            "key": .string("node-role.kubernetes.io/control-plane"), "effect": .string("NoSchedule"),
                        ])
                    ])
                ] : [:]
            var status: [String: JSONValue] = [:]
            if let allocatable = node.allocatable {
                status["allocatable"] = .object(allocatable.mapValues(JSONValue.string))
                status["capacity"] = .object(allocatable.mapValues(JSONValue.string))
            }
            let object: JSONValue = .object([
                "metadata": .object([
                    "name": .string(node.name), "labels": .object(labels.mapValues(JSONValue.string)),
                    "annotations": .object([:]),
                ]),
                "spec": .object(taints),
                "status": .object(
                    status.merging([
                        "conditions": .array([
                            Self.condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", now)
                        ]),
                        "addresses": .array([
                            .object(["type": .string("InternalIP"), "address": .string(node.internalIP)]),
                            .object(["type": .string("Hostname"), "address": .string(node.name)]),
                        ]),
                        "nodeInfo": .object([
                            "kubeletVersion": .string("v" + node.kubeletVersion),
                            "containerRuntimeVersion": .string(node.containerRuntimeVersion),
                            "kubeProxyVersion": .string(""),
                            "osImage": .string("Debian GNU/Linux 12 (bookworm)"), "kernelVersion": .string("6.1.0-sim"),
                            "operatingSystem": .string("linux"), "architecture": .string("amd64"),
                            "machineID": .string(Self.newUID()), "systemUUID": .string(Self.newUID()),
                            "bootID": .string(Self.newUID()),
                        ]),
                    ]) { $1 }),
            ])
            _ = try? create(.nodes, namespace: nil, object: object)
            if node.roles.contains("control-plane") {
                for component in ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"] {
                    let version = component == "etcd" ? "3.5.21-0" : "v" + node.kubeletVersion
                    var workload = Scenario.Workload(
                        kind: "Mirror", namespace: "kube-system", name: "\(component)-\(node.name)",
                        labels: ["component": component, "tier": "control-plane"])
                    workload.terminationGracePeriodSeconds = 30
                    addPod(
                        namespace: "kube-system", name: "\(component)-\(node.name)", workload: workload, owner: nil,
                        node: node.name, ready: true, now: now,
                        image: "registry.k8s.io/\(component):\(version)")
                }
            }
        }
        let workers = scenario.nodes.filter { !$0.roles.contains("control-plane") }.map(\.name)
        for workload in scenario.workloads {
            namespaces.insert(workload.namespace)
            switch workload.kind {
            case "ReplicaSet", "DaemonSet":
                let resource: Resource = workload.kind == "ReplicaSet" ? .replicasets : .daemonsets
                let owner = try? create(
                    resource, namespace: workload.namespace,
                    object: .object([
                        "metadata": .object([
                            "name": .string(workload.name),
                            "labels": .object(workload.labels.mapValues(JSONValue.string)),
                        ]),
                        "spec": .object([
                            "replicas": .number(Double(workload.replicas)),
                            "selector": .object(["matchLabels": .object(workload.labels.mapValues(JSONValue.string))]),
                            "template": Self.template(workload),
                        ]),
                    ]))
                if workload.kind == "ReplicaSet", let owner {
                    let targets = workload.nodes ?? workers
                    for index in 0..<workload.replicas where !targets.isEmpty {
                        addPod(
                            namespace: workload.namespace, name: "\(workload.name)-\(Self.suffix())",
                            workload: workload,
                            owner: owner, node: targets[index % targets.count], ready: true, now: now)
                    }
                }
            case "Pod", "Mirror":
                for (index, node) in (workload.nodes ?? [workers.first ?? ""]).enumerated() {
                    let name = index == 0 ? workload.name : "\(workload.name)-\(index)"
                    addPod(
                        namespace: workload.namespace, name: name, workload: workload, owner: nil, node: node,
                        ready: true, now: now)
                }
            default:
                continue
            }
        }
        for budget in scenario.budgets {
            namespaces.insert(budget.namespace)
            var spec: [String: JSONValue] = [
                "selector": .object(["matchLabels": .object(budget.selector.mapValues(JSONValue.string))])
            ]
            if let minimum = budget.minAvailable { spec["minAvailable"] = Self.json(minimum) }
            if let maximum = budget.maxUnavailable { spec["maxUnavailable"] = Self.json(maximum) }
            _ = try? create(
                .poddisruptionbudgets, namespace: budget.namespace,
                object: .object([
                    "metadata": .object(["name": .string(budget.name), "generation": .number(1)]),
                    "spec": .object(spec),
                ]))
        }
        for namespace in namespaces {
            _ = try? create(
                .namespaces, namespace: nil,
                object: .object([
                    "metadata": .object(["name": .string(namespace), "annotations": .object([:])]),
                    "status": .object(["phase": .string("Active")]),
                ]))
        }
        runDaemonSets(now: now)
        for key in readyAt.keys { readyAt[key] = now }
        markReady(now: now)
        recomputeBudgets(now: now)
    }

    private func addPod(
        namespace: String, name: String, workload: Scenario.Workload, owner: JSONValue?, node: String?, ready: Bool,
        now: Date, image: String = "registry.k8s.io/pause:3.10"
    ) {
        var metadata: [String: JSONValue] = [
            "name": .string(name), "labels": .object(workload.labels.mapValues(JSONValue.string)),
        ]
        if let owner, let uid = owner[["metadata", "uid"]], let ownerName = owner[["metadata", "name"]] {
            let kind = workload.kind == "DaemonSet" ? "DaemonSet" : "ReplicaSet"
            metadata["ownerReferences"] = .array([
                .object([
                    "apiVersion": .string("apps/v1"), "kind": .string(kind), "name": ownerName, "uid": uid,
                    "controller": .bool(true), "blockOwnerDeletion": .bool(true),
                ])
            ])
        }
        if workload.kind == "Mirror" {
            metadata["annotations"] = .object(["kubernetes.io/config.mirror": .string(Self.newUID())])
            if let node {
                metadata["ownerReferences"] = .array([
                    .object([
                        "apiVersion": .string("v1"), "kind": .string("Node"), "name": .string(node),
                        "uid": objects[.nodes]?[node]?[["metadata", "uid"]] ?? .string(""), "controller": .bool(true),
                    ])
                ])
            }
        }
        var spec = Self.template(workload)[["spec"]]?.objectValue ?? [:]
        var container: [String: JSONValue] = ["name": .string("main"), "image": .string(image)]
        if let requests = workload.requests {
            container["resources"] = .object(["requests": .object(requests.mapValues(JSONValue.string))])
        }
        spec["containers"] = .array([.object(container)])
        if let node { spec["nodeName"] = .string(node) }
        var pod: JSONValue = .object([
            "metadata": .object(metadata), "spec": .object(spec),
            "status": .object(["phase": .string(node == nil || !ready ? "Pending" : "Running")]),
        ])
        if ready && node != nil {
            pod = Self.settingCondition(pod, type: "Ready", status: "True", reason: nil, message: nil, now: now)
        }
        _ = try? create(.pods, namespace: namespace, object: pod)
        if !ready && node != nil {
            readyAt[Self.key(namespace, name)] = now.addingTimeInterval(scenario.readyAfterSeconds)
        }
    }

    private static func template(_ workload: Scenario.Workload) -> JSONValue {
        var spec: [String: JSONValue] = [:]
        if workload.emptyDir {
            spec["volumes"] = .array([.object(["name": .string("scratch"), "emptyDir": .object([:])])])
        }
        if let grace = workload.terminationGracePeriodSeconds {
            spec["terminationGracePeriodSeconds"] = .number(Double(grace))
        }
        if let tolerations = workload.tolerations { spec["tolerations"] = .array(tolerations) }
        if let requests = workload.requests {
            spec["containers"] = .array([
                .object([
                    "name": .string("main"), "image": .string("registry.k8s.io/pause:3.10"),
                    "resources": .object(["requests": .object(requests.mapValues(JSONValue.string))]),
                ])
            ])
        }
        return .object([
            "metadata": .object(["labels": .object(workload.labels.mapValues(JSONValue.string))]),
            "spec": .object(spec),
        ])
    }

    private static func workload(from owner: JSONValue) -> Scenario.Workload {
        var workload = Scenario.Workload(
            kind: owner[["kind"]]?.stringValue ?? "ReplicaSet", name: owner[["metadata", "name"]]?.stringValue ?? "",
            labels: owner.stringMap("spec.selector.matchLabels"))
        let spec = owner[["spec", "template", "spec"]]
        workload.emptyDir = spec?[["volumes"]]?.arrayValue?.contains { $0[["emptyDir"]] != nil } ?? false
        workload.terminationGracePeriodSeconds = spec?[["terminationGracePeriodSeconds"]]?.intValue
        workload.requests = spec?[["containers"]]?.arrayValue?.first?.stringMap("resources.requests")
        if workload.requests?.isEmpty == true { workload.requests = nil }
        workload.tolerations = spec?[["tolerations"]]?.arrayValue
        return workload
    }

    // MARK: - Helpers

    private func store(_ resource: Resource, _ key: String, _ object: JSONValue) {
        var object = object
        bump()
        object[["metadata", "resourceVersion"]] = .string(String(resourceVersion))
        object[["kind"]] = .string(resource.kind)
        object[["apiVersion"]] = .string(resource.apiVersion)
        if object[["metadata", "uid"]] == nil { object[["metadata", "uid"]] = .string(Self.newUID()) }
        if object[["metadata", "creationTimestamp"]] == nil {
            object[["metadata", "creationTimestamp"]] = .string(Self.timestamp(clock()))
        }
        objects[resource]?[key] = object
    }

    private func bump() { resourceVersion += 1 }

    static func key(_ namespace: String?, _ name: String) -> String {
        namespace.map { "\($0)/\(name)" } ?? name
    }

    static func isControlPlane(_ node: JSONValue) -> Bool {
        node[["metadata", "labels", "node-role.kubernetes.io/control-plane"]] != nil
            || node[["metadata", "labels", "node.kubernetes.io/microk8s-controlplane"]] != nil
    }

    /// Whether `pod` tolerates every NoSchedule and NoExecute taint of
    /// `node`, by the scheduler's rule: a toleration with no key and
    /// `Exists` matches every taint; otherwise the keys match and either
    /// `Exists`, or `Equal` (the default) with the same value; an empty
    /// effect matches every effect.
    static func tolerates(_ pod: JSONValue, _ node: JSONValue) -> Bool {
        let tolerations = pod[["spec", "tolerations"]]?.arrayValue ?? []
        return (node[["spec", "taints"]]?.arrayValue ?? []).allSatisfy { taint in
            let effect = taint[["effect"]]?.stringValue ?? ""
            guard effect == "NoSchedule" || effect == "NoExecute" else { return true }
            let key = taint[["key"]]?.stringValue ?? ""
            let value = taint[["value"]]?.stringValue ?? ""
            return tolerations.contains { toleration in
                let exists = toleration[["operator"]]?.stringValue == "Exists"
                let tolerationKey = toleration[["key"]]?.stringValue ?? ""
                let tolerationEffect = toleration[["effect"]]?.stringValue ?? ""
                guard tolerationEffect.isEmpty || tolerationEffect == effect else { return false }
                if tolerationKey.isEmpty { return exists }
                return tolerationKey == key && (exists || (toleration[["value"]]?.stringValue ?? "") == value)
            }
        }
    }

    static func isNodeReady(_ node: JSONValue) -> Bool {
        node[["status", "conditions"]]?.arrayValue?.contains {
            $0[["type"]]?.stringValue == "Ready" && $0[["status"]]?.stringValue == "True"
        } ?? false
    }

    static func isReady(_ pod: JSONValue) -> Bool {
        pod[["metadata", "deletionTimestamp"]] == nil
            && (pod[["status", "conditions"]]?.arrayValue?.contains {
                $0[["type"]]?.stringValue == "Ready" && $0[["status"]]?.stringValue == "True"
            } ?? false)
    }

    private static func controllerUID(_ pod: JSONValue) -> String? {
        pod[["metadata", "ownerReferences"]]?.arrayValue?.first { $0[["controller"]]?.boolValue == true }?[["uid"]]?
            .stringValue
    }

    private static func intOrPercent(_ value: JSONValue?) -> IntOrPercent? {
        switch value {
        case .number(let number)?: return .count(Int(number))
        case .string(let text)? where text.hasSuffix("%"): return Int(text.dropLast()).map(IntOrPercent.percent)
        default: return nil
        }
    }

    private static func json(_ value: IntOrPercent) -> JSONValue {
        switch value {
        case .count(let count): .number(Double(count))
        case .percent(let percent): .string("\(percent)%")
        }
    }

    static func settingCondition(
        _ object: JSONValue, type: String, status: String, reason: String?, message: String?, now: Date
    )
        -> JSONValue
    {
        var object = object
        var conditions = object[["status", "conditions"]]?.arrayValue ?? []
        conditions.removeAll { $0[["type"]]?.stringValue == type }
        var condition: [String: JSONValue] = [
            "type": .string(type), "status": .string(status), "lastTransitionTime": .string(timestamp(now)),
        ]
        if let reason { condition["reason"] = .string(reason) }
        if let message { condition["message"] = .string(message) }
        conditions.insert(.object(condition), at: 0)
        object[["status", "conditions"]] = .array(conditions)
        return object
    }

    private static func condition(
        _ type: String, _ status: String, _ reason: String, _ message: String, _ now: Date
    )
        -> JSONValue
    {
        .object([
            "type": .string(type), "status": .string(status), "reason": .string(reason), "message": .string(message),
            "lastHeartbeatTime": .string(timestamp(now)), "lastTransitionTime": .string(timestamp(now)),
        ])
    }

    static func newUID() -> String { UUID().uuidString.lowercased() }

    private static func suffix() -> String {
        String((0..<5).map { _ in "bcdfghjklmnpqrstvwxz2456789".randomElement()! })
    }

    /// RFC 3339 in UTC, whole seconds: `2026-01-10T10:00:00Z`.
    static func timestamp(_ date: Date) -> String { date.ISO8601Format() }

    static func parseTimestamp(_ text: String) -> Date? {
        try? Date(text, strategy: .iso8601)
    }
}
