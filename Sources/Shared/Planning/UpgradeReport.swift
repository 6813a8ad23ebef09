/// The summary a finished job keeps as its result.
public struct UpgradeReport: Sendable, Equatable {
    public struct NodeReport: Sendable, Equatable {
        public var name: String
        public var role: NodeRole
        public var before: String
        public var after: String
        public var outcome: String
        public var drainSeconds: Double = 0
        public var scriptSeconds: Double = 0
        public var soakSeconds: Double = 0
        /// From the node's start to its verification (without the soak).
        public var workSeconds: Double = 0
        public var podsEvicted = 0
        /// Budgets and other blockers met while draining.
        public var blockers: [String] = []
        /// What pre-flight's drain forecast said would block this node's drain.
        public var predicted: [String] = []
        /// Pods the drain left on the node on purpose (the orchestrator itself, the exclusion selector).
        public var podsLeft: [String] = []

        public init(name: String, role: NodeRole, before: String, after: String = "", outcome: String = "") {
            self.name = name
            self.role = role
            self.before = before
            self.after = after
            self.outcome = outcome
        }
    }

    public var target: KubeVersion
    public var dryRun: Bool
    public var snapshotPath: String?
    public var snapshot: String?
    /// The snapshot's copy off the master, and the SHA-256 both ends agreed on.
    public var snapshotCopy: String?
    public var snapshotSHA256: String?
    /// What the restore rehearsal of the copy found.
    public var snapshotRehearsal: String?
    public var nodes: [NodeReport] = []
    public var totalSeconds: Double = 0

    public init(target: KubeVersion, dryRun: Bool) {
        self.target = target
        self.dryRun = dryRun
    }

    /// Adds or replaces a node's line.
    public mutating func record(_ node: NodeReport) {
        if let index = nodes.firstIndex(where: { $0.name == node.name }) {
            nodes[index] = node
        } else {
            nodes.append(node)
        }
    }

    public var json: JSONValue {
        .object([
            "target_version": .string(target.description),
            "dry_run": .bool(dryRun),
            "snapshot_path": snapshotPath.map(JSONValue.string) ?? .null,
            "snapshot": snapshot.map(JSONValue.string) ?? .null,
            "snapshot_copy": snapshotCopy.map(JSONValue.string) ?? .null,
            "snapshot_sha256": snapshotSHA256.map(JSONValue.string) ?? .null,
            "snapshot_rehearsal": snapshotRehearsal.map(JSONValue.string) ?? .null,
            "total_seconds": .number(Self.rounded(totalSeconds)),
            "nodes": .array(
                nodes.map { node in
                    .object([
                        "name": .string(node.name), "role": .string(node.role.rawValue),
                        "before": .string(node.before), "after": .string(node.after),
                        "outcome": .string(node.outcome),
                        "drain_seconds": .number(Self.rounded(node.drainSeconds)),
                        "script_seconds": .number(Self.rounded(node.scriptSeconds)),
                        "soak_seconds": .number(Self.rounded(node.soakSeconds)),
                        "work_seconds": .number(Self.rounded(node.workSeconds)),
                        "pods_evicted": .number(Double(node.podsEvicted)),
                        "blockers": .array(node.blockers.map(JSONValue.string)),
                        "predicted_blockers": .array(node.predicted.map(JSONValue.string)),
                        "pods_left_on_purpose": .array(node.podsLeft.map(JSONValue.string)),
                    ])
                }),
            "summary": .array(lines.map(JSONValue.string)),
        ])
    }

    /// The report as text: one line per node, then the snapshot and the total.
    public var lines: [String] {
        var lines = nodes.map { node in
            var line = "\(node.name) (\(node.role.rawValue)): \(node.before) → \(node.after), \(node.outcome)"
            if node.drainSeconds + node.scriptSeconds + node.soakSeconds > 0 {
                line +=
                    "; drain \(Self.seconds(node.drainSeconds)), script \(Self.seconds(node.scriptSeconds)), soak \(Self.seconds(node.soakSeconds)), \(node.podsEvicted) pods evicted"
            }
            if !node.podsLeft.isEmpty { line += "; left on purpose: " + node.podsLeft.joined(separator: ", ") }
            if !node.blockers.isEmpty { line += "; blockers: " + node.blockers.joined(separator: "; ") }
            if !node.predicted.isEmpty { line += "; forecast: " + node.predicted.joined(separator: "; ") }
            return line
        }
        if let snapshotPath { lines.append("snapshot: \(snapshotPath)\(snapshot.map { " (\($0))" } ?? "")") }
        if let snapshotCopy, let snapshotSHA256 {
            lines.append("copied off the master: \(snapshotCopy) (sha256 \(snapshotSHA256))")
        }
        lines.append("total: \(Self.seconds(totalSeconds))\(dryRun ? " (dry run: nothing was changed)" : "")")
        return lines
    }

    static func rounded(_ value: Double) -> Double { (value * 10).rounded() / 10 }

    /// `12.3 s`.
    public static func seconds(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) s"
    }
}
