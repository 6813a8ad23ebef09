/// A Kubernetes equality-based label selector (`key=value`, `key!=value`,
/// `key`, `!key`, comma-separated, every term must hold), as `kubectl get
/// -l` reads it. An empty selector matches nothing here: an exclusion that
/// matched every pod would make every drain a no-op.
public struct PodSelector: Sendable, Equatable, CustomStringConvertible {
    public enum Term: Sendable, Equatable {
        case equals(String, String)
        case notEquals(String, String)
        case exists(String)
        case absent(String)
    }

    public var terms: [Term]

    /// Reads a selector; a term that is not a valid label key or value is an
    /// error naming it.
    public init(parsing text: String) throws(DrainExclusionError) {
        var terms: [Term] = []
        for raw in text.split(separator: ",", omittingEmptySubsequences: true) {
            let term = raw.trimmingWhitespace()
            if term.isEmpty { continue }
            let parsed: Term
            if let index = term.firstIndex(of: "=") {
                var value = term[term.index(after: index)...]
                if value.hasPrefix("=") { value = value.dropFirst() }  // `key==value`
                let key = term[..<index]
                parsed =
                    key.hasSuffix("!")
                    ? .notEquals(String(key.dropLast()), String(value)) : .equals(String(key), String(value))
            } else if term.hasPrefix("!") {
                parsed = .absent(String(term.dropFirst()))
            } else {
                parsed = .exists(term)
            }
            switch parsed {
            case let .equals(key, value), let .notEquals(key, value):
                guard Self.isLabelKey(key), Self.isLabelValue(value) else {
                    throw DrainExclusionError(
                        "selector term \"\(term)\" is not key=value or key!=value with a valid label key and value")
                }
            case let .exists(key), let .absent(key):
                guard Self.isLabelKey(key) else {
                    throw DrainExclusionError("selector term \"\(term)\" does not name a valid label key")
                }
            }
            terms.append(parsed)
        }
        self.terms = terms
    }

    /// Whether every term holds for `labels`; false for an empty selector.
    public func matches(_ labels: [String: String]) -> Bool {
        !terms.isEmpty
            && terms.allSatisfy { term in
                switch term {
                case let .equals(key, value): labels[key] == value
                case let .notEquals(key, value): labels[key] != value
                case let .exists(key): labels[key] != nil
                case let .absent(key): labels[key] == nil
                }
            }
    }

    public var description: String {
        terms.map { term in
            switch term {
            case let .equals(key, value): "\(key)=\(value)"
            case let .notEquals(key, value): "\(key)!=\(value)"
            case let .exists(key): key
            case let .absent(key): "!\(key)"
            }
        }.joined(separator: ",")
    }

    /// `[prefix/]name`: the prefix a DNS subdomain, the name at most 63
    /// alphanumerics with inner `-`, `_`, `.`.
    static func isLabelKey(_ key: String) -> Bool {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        switch parts.count {
        case 1: return isLabelName(parts[0])
        case 2: return ObjectName.isDNS1123Subdomain(String(parts[0])) && isLabelName(parts[1])
        default: return false
        }
    }

    static func isLabelValue(_ value: String) -> Bool { value.isEmpty || isLabelName(Substring(value)) }

    private static func isLabelName(_ name: Substring) -> Bool {
        guard let first = name.first, let last = name.last, name.count <= 63 else { return false }
        let alphanumeric: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber) }
        return alphanumeric(first) && alphanumeric(last)
            && name.allSatisfy { alphanumeric($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }
}

/// Pods a drain leaves on the node on purpose, as system-upgrade-controller
/// leaves its own: the pod running the orchestrator (named by the downward
/// API) and every pod the exclusion selector matches (by default the
/// detector's and the orchestrator's). The orchestrator keeps running while
/// its node's kubelet restarts, since a kubelet restart does not stop
/// running containers.
public struct DrainExclusion: Sendable, Equatable {
    /// `namespace/name` of the pod this process runs in, when known.
    public var ownPod: String?
    public var selector: PodSelector

    /// The labels `deploy/` gives the detector's and the orchestrator's pods.
    public static let defaultSelector = "app.kubernetes.io/name=k8s-upgrade"

    public init(ownPod: String? = nil, selector: PodSelector = PodSelector.standard) {
        self.ownPod = ownPod
        self.selector = selector
    }

    /// Nothing excluded: a drain exactly like kubectl's.
    public static let none = DrainExclusion(ownPod: nil, selector: PodSelector(terms: []))

    /// Why `pod` stays, or nil when drain treats it as usual.
    public func reason(for pod: PodFacts) -> String? {
        if let ownPod, pod.reference == ownPod { return "the orchestrator itself, left running on purpose" }
        if selector.matches(pod.labels) { return "excluded by selector \(selector), left running on purpose" }
        return nil
    }
}

extension PodSelector {
    init(terms: [Term]) { self.terms = terms }

    /// ``DrainExclusion/defaultSelector``, parsed.
    public static let standard = PodSelector(terms: [.equals("app.kubernetes.io/name", "k8s-upgrade")])
}

public struct DrainExclusionError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
