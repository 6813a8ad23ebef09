/// CPU (millicores), memory (bytes) and a pod count: what a pod requests
/// or what a node can hold (`status.allocatable`).
public struct Resources: Sendable, Equatable, CustomStringConvertible {
    public var milliCPU: Int64
    public var memory: Int64
    public var pods: Int64

    public init(milliCPU: Int64 = 0, memory: Int64 = 0, pods: Int64 = 0) {
        self.milliCPU = milliCPU
        self.memory = memory
        self.pods = pods
    }

    public static func + (lhs: Resources, rhs: Resources) -> Resources {
        Resources(milliCPU: lhs.milliCPU + rhs.milliCPU, memory: lhs.memory + rhs.memory, pods: lhs.pods + rhs.pods)
    }

    public static func - (lhs: Resources, rhs: Resources) -> Resources {
        Resources(milliCPU: lhs.milliCPU - rhs.milliCPU, memory: lhs.memory - rhs.memory, pods: lhs.pods - rhs.pods)
    }

    /// Each of CPU, memory and pods at least `other`'s.
    public func covers(_ other: Resources) -> Bool {
        milliCPU >= other.milliCPU && memory >= other.memory && pods >= other.pods
    }

    /// Field by field, the larger.
    func maximum(_ other: Resources) -> Resources {
        Resources(
            milliCPU: max(milliCPU, other.milliCPU), memory: max(memory, other.memory), pods: max(pods, other.pods))
    }

    /// `cpu 1500m, memory 2Gi`.
    public var description: String {
        "cpu \(milliCPU)m, memory \(Quantity.binary(memory))"
    }

    /// A `resources.requests` (or `status.allocatable`) map; `pods` read when present.
    public init(json: JSONValue?) {
        self.init(
            milliCPU: json?[["cpu"]]?.stringValue.flatMap { Quantity.milli($0) } ?? 0,
            memory: json?[["memory"]]?.stringValue.flatMap { Quantity.value($0) } ?? 0,
            pods: json?[["pods"]]?.stringValue.flatMap { Quantity.value($0) } ?? 0)
    }

    /// What a pod requests, as the scheduler counts it: the sum of its
    /// containers' requests (a container's limits where it sets no
    /// requests, as the API server defaults them), at least each init
    /// container's, and one pod.
    public init(podSpec spec: JSONValue?) {
        func requests(_ container: JSONValue) -> Resources {
            let resources = container[["resources"]]
            let requested = Resources(json: resources?[["requests"]])
            let limited = Resources(json: resources?[["limits"]])
            return Resources(
                milliCPU: resources?[["requests", "cpu"]] != nil ? requested.milliCPU : limited.milliCPU,
                memory: resources?[["requests", "memory"]] != nil ? requested.memory : limited.memory)
        }
        let containers = (spec?[["containers"]]?.arrayValue ?? []).map(requests).reduce(Resources(), +)
        let initial = (spec?[["initContainers"]]?.arrayValue ?? []).map(requests).reduce(Resources()) {
            $0.maximum($1)
        }
        self = containers.maximum(initial) + Resources(pods: 1)
    }
}

/// Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `1G`, `1e3`).
public enum Quantity {
    /// The quantity in its base unit, rounded up (bytes, pods); nil when unreadable.
    public static func value(_ text: String) -> Int64? { scaled(text, by: 1) }

    /// The quantity in thousandths, rounded up (millicores).
    public static func milli(_ text: String) -> Int64? { scaled(text, by: 1000) }

    private static let suffixes: [(String, Double)] = [
        ("Ki", 1024), ("Mi", 1_048_576), ("Gi", 1_073_741_824), ("Ti", 1_099_511_627_776),
        ("Pi", 1_125_899_906_842_624), ("Ei", 1_152_921_504_606_846_976), ("n", 1e-9), ("u", 1e-6), ("m", 1e-3),
        ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18),
    ]

    private static func scaled(_ text: String, by factor: Double) -> Int64? {
        var number = Substring(text.trimmingWhitespace())
        var multiplier = 1.0
        if let (suffix, scale) = suffixes.first(where: { number.hasSuffix($0.0) }) {
            number = number.dropLast(suffix.count)
            multiplier = scale
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }),
            let value = Double(number), value.isFinite, value >= 0
        else { return nil }
        let result = (value * multiplier * factor).rounded(.up)
        return result < 9e18 ? Int64(result) : nil
    }

    /// `2Gi`, `1536Mi`, `100Ki`, or bytes.
    public static func binary(_ bytes: Int64) -> String {
        for (suffix, scale) in [("Gi", Int64(1_073_741_824)), ("Mi", 1_048_576), ("Ki", 1024)]
        where bytes >= scale && bytes % scale == 0 {
            return "\(bytes / scale)\(suffix)"
        }
        return "\(bytes)"
    }
}

/// A node taint (`spec.taints`).
public struct Taint: Sendable, Equatable {
    public var key: String
    public var value: String
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    public var effect: String

    public init(key: String, value: String = "", effect: String) {
        self.key = key
        self.value = value
        self.effect = effect
    }

    /// Keeps new pods off the node unless tolerated (`PreferNoSchedule` does not).
    var repels: Bool { effect == "NoSchedule" || effect == "NoExecute" }
}

/// A pod toleration (`spec.tolerations`).
public struct Toleration: Sendable, Equatable {
    /// Empty with `Exists`: every key.
    public var key: String
    public var exists: Bool
    public var value: String
    /// Empty: every effect.
    public var effect: String

    public init(key: String, exists: Bool = false, value: String = "", effect: String = "") {
        self.key = key
        self.exists = exists
        self.value = value
        self.effect = effect
    }

    /// As the scheduler matches them (`v1.Toleration.ToleratesTaint`).
    public func tolerates(_ taint: Taint) -> Bool {
        guard effect.isEmpty || effect == taint.effect else { return false }
        if exists { return key.isEmpty || key == taint.key }
        return key == taint.key && value == taint.value
    }

    public init(json: JSONValue) {
        self.init(
            key: json[["key"]]?.stringValue ?? "", exists: json[["operator"]]?.stringValue == "Exists",
            value: json[["value"]]?.stringValue ?? "", effect: json[["effect"]]?.stringValue ?? "")
    }
}

/// What the scheduler needs of a node to place a pod on it.
public struct NodeRoom: Sendable, Equatable {
    public var name: String
    /// `nil`: the node reports none; anything fits.
    public var allocatable: Resources?
    public var taints: [Taint]
    public var labels: [String: String]
    /// Not cordoned and Ready: new pods may land on it.
    public var schedulable: Bool

    public init(
        name: String, allocatable: Resources?, taints: [Taint] = [], labels: [String: String] = [:],
        schedulable: Bool = true
    ) {
        self.name = name
        self.allocatable = allocatable
        self.taints = taints
        self.labels = labels
        self.schedulable = schedulable
    }

    /// Reads a Node object (`facts`: what was already read of it).
    public init(node: JSONValue, facts known: NodeFacts? = nil) {
        let facts = known ?? NodeFacts(node: node, cordonAnnotation: "")
        self.init(
            name: facts.name,
            allocatable: node[["status", "allocatable"]].map { json in
                var room = Resources(json: json)
                if json[["pods"]] == nil { room.pods = 1_000_000 }
                return room
            },
            taints: (node[["spec", "taints"]]?.arrayValue ?? []).map {
                Taint(
                    key: $0[["key"]]?.stringValue ?? "", value: $0[["value"]]?.stringValue ?? "",
                    effect: $0[["effect"]]?.stringValue ?? "")
            }, labels: facts.labels, schedulable: facts.isReady && !facts.unschedulable)
    }
}

/// One term of a pod's required node affinity
/// (`requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[]`):
/// every requirement must hold. `matchFields` reads the node's name.
public struct NodeSelectorTerm: Sendable, Equatable {
    public struct Requirement: Sendable, Equatable {
        public var key: String
        /// `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`.
        public var operation: String
        public var values: [String]
        /// A `matchFields` requirement (`metadata.name`), not a label.
        public var field: Bool

        public init(key: String, operation: String, values: [String] = [], field: Bool = false) {
            self.key = key
            self.operation = operation
            self.values = values
            self.field = field
        }

        func holds(on room: NodeRoom) -> Bool {
            let value = field ? (key == "metadata.name" ? room.name : nil) : room.labels[key]
            switch operation {
            case "In": return value.map(values.contains) ?? false
            case "NotIn": return value.map { !values.contains($0) } ?? true
            case "Exists": return value != nil
            case "DoesNotExist": return value == nil
            case "Gt", "Lt":
                guard let number = value.flatMap({ Int64($0) }), let bound = values.first.flatMap({ Int64($0) }) else {
                    return false
                }
                return operation == "Gt" ? number > bound : number < bound
            default: return false
            }
        }
    }

    public var requirements: [Requirement]

    public init(requirements: [Requirement]) { self.requirements = requirements }

    /// An empty term selects no node, as the scheduler reads it.
    func matches(_ room: NodeRoom) -> Bool { !requirements.isEmpty && requirements.allSatisfy { $0.holds(on: room) } }

    init(json: JSONValue) {
        func read(_ path: String, field: Bool) -> [Requirement] {
            (json[dotted: path]?.arrayValue ?? []).map {
                Requirement(
                    key: $0[["key"]]?.stringValue ?? "", operation: $0[["operator"]]?.stringValue ?? "",
                    values: ($0[["values"]]?.arrayValue ?? []).compactMap(\.stringValue), field: field)
            }
        }
        self.init(requirements: read("matchExpressions", field: false) + read("matchFields", field: true))
    }
}

/// A pod where it runs, with what placing it again needs.
public struct PodPlacement: Sendable, Equatable {
    public var pod: PodFacts
    public var node: String
    public var requests: Resources
    public var tolerations: [Toleration]
    public var nodeSelector: [String: String]
    /// Required node affinity: a node must match one of the terms; empty: any node.
    public var affinity: [NodeSelectorTerm]

    public init(
        pod: PodFacts, node: String, requests: Resources = Resources(pods: 1), tolerations: [Toleration] = [],
        nodeSelector: [String: String] = [:], affinity: [NodeSelectorTerm] = []
    ) {
        self.pod = pod
        self.node = node
        self.requests = requests
        self.tolerations = tolerations
        self.nodeSelector = nodeSelector
        self.affinity = affinity
    }

    /// Reads a Pod object; nil for a pod on no node.
    public init?(pod json: JSONValue) {
        guard let node = json[["spec", "nodeName"]]?.stringValue, !node.isEmpty else { return nil }
        self.init(
            pod: PodFacts(pod: json), node: node, requests: Resources(podSpec: json[["spec"]]),
            tolerations: (json[["spec", "tolerations"]]?.arrayValue ?? []).map(Toleration.init(json:)),
            nodeSelector: json.stringMap("spec.nodeSelector"),
            affinity: (json[
                dotted: "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
            ]?.arrayValue ?? []).map(NodeSelectorTerm.init(json:)))
    }

    /// Why `room` cannot take this pod, or nil when it can (`used` is what
    /// its pods already request).
    func misfit(on room: NodeRoom, used: Resources) -> String? {
        if !room.schedulable { return "cordoned or not Ready" }
        if let taint = room.taints.first(where: { taint in
            taint.repels && !tolerations.contains { $0.tolerates(taint) }
        }) {
            return "taint \(taint.key)\(taint.value.isEmpty ? "" : "=\(taint.value)"):\(taint.effect) not tolerated"
        }
        if let (key, value) = nodeSelector.first(where: { room.labels[$0.key] != $0.value }) {
            return "nodeSelector \(key)=\(value) does not match"
        }
        if !affinity.isEmpty, !affinity.contains(where: { $0.matches(room) }) {
            return "required node affinity does not match"
        }
        if let allocatable = room.allocatable, !(allocatable - used).covers(requests) {
            let free = allocatable - used
            return
                "\(Resources(milliCPU: max(0, free.milliCPU), memory: max(0, free.memory))) free, \(max(0, free.pods)) pods"
        }
        return nil
    }
}
