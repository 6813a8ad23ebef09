/// The stages of an upgrade job, in the order the pipeline runs them.
public enum UpgradeStage: String, Sendable, Codable, CaseIterable, Comparable {
    case preflight
    case snapshot
    case containerd
    case repo
    case master
    case workers
    case postflight

    public static func < (lhs: UpgradeStage, rhs: UpgradeStage) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// Which stages a job runs: all of them, or a subset that always runs in
/// pipeline order whatever order it was written in.
public enum StageSelection: Sendable, Equatable, CustomStringConvertible {
    case all
    case only([UpgradeStage])

    /// The stages to run, in pipeline order.
    public var stages: [UpgradeStage] {
        switch self {
        case .all: UpgradeStage.allCases
        case let .only(stages): stages
        }
    }

    /// Whether `stage` is selected.
    public func includes(_ stage: UpgradeStage) -> Bool {
        switch self {
        case .all: true
        case let .only(stages): stages.contains(stage)
        }
    }

    /// Reads `all` or a comma list such as `preflight,snapshot`.
    ///
    /// - Throws: a message naming the unknown or repeated stage and the valid names.
    public init(parsing text: String) throws(RequestValidationError) {
        let field = "stages"
        let trimmed = Substring(text).trimmingASCIIWhitespace()
        if trimmed == "all" {
            self = .all
            return
        }
        let valid = (["all"] + UpgradeStage.allCases.map(\.rawValue)).joined(separator: ", ")
        guard !trimmed.isEmpty else {
            throw RequestValidationError(field: field, rule: "must be \"all\" or a comma list of: \(valid)")
        }
        var chosen: [UpgradeStage] = []
        for name in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let name = name.trimmingASCIIWhitespace()
            guard let stage = UpgradeStage(rawValue: name) else {
                let shown = name.isEmpty ? "an empty name" : "unknown stage \"\(name)\""
                let rule = name == "all" ? "\"all\" cannot be combined with other stages" : "\(shown); valid: \(valid)"
                throw RequestValidationError(field: field, rule: rule)
            }
            guard !chosen.contains(stage) else {
                throw RequestValidationError(field: field, rule: "stage \"\(name)\" is listed twice")
            }
            chosen.append(stage)
        }
        self = .only(chosen.sorted())
    }

    /// `all`, or the selected stages as a comma list in pipeline order.
    public var description: String {
        switch self {
        case .all: "all"
        case let .only(stages): stages.map(\.rawValue).joined(separator: ",")
        }
    }
}
