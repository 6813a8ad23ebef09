/// A Kubernetes `metav1.LabelSelector`: `matchLabels` and `matchExpressions`
/// (`In`, `NotIn`, `Exists`, `DoesNotExist`), every term ANDed. As in
/// policy/v1, an empty selector (`{}`) selects every pod of the namespace;
/// a null one selects none (``BudgetFacts`` keeps that as `nil`).
public struct LabelSelector: Sendable, Equatable {
    public enum Operator: String, Sendable, Equatable {
        case `in` = "In"
        case notIn = "NotIn"
        case exists = "Exists"
        case doesNotExist = "DoesNotExist"
    }

    public struct Expression: Sendable, Equatable {
        public var key: String
        public var `operator`: Operator
        public var values: [String]

        public init(key: String, _ operator: Operator, _ values: [String] = []) {
            self.key = key
            self.operator = `operator`
            self.values = values
        }
    }

    public var matchLabels: [String: String]
    public var matchExpressions: [Expression]

    public init(matchLabels: [String: String] = [:], matchExpressions: [Expression] = []) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// Reads a selector object; `nil` for a null or absent one, and for one
    /// the API server could not turn into a selector (an unknown operator,
    /// `In` without values, `Exists` with some), which matches no pod.
    public init?(json: JSONValue?) {
        guard let json, case .object = json else { return nil }
        var expressions: [Expression] = []
        for item in json[["matchExpressions"]]?.arrayValue ?? [] {
            guard let key = item[["key"]]?.stringValue,
                let op = item[["operator"]]?.stringValue.flatMap(Operator.init(rawValue:))
            else { return nil }
            let values = (item[["values"]]?.arrayValue ?? []).compactMap(\.stringValue)
            switch op {
            case .in, .notIn: guard !values.isEmpty else { return nil }
            case .exists, .doesNotExist: guard values.isEmpty else { return nil }
            }
            expressions.append(Expression(key: key, op, values))
        }
        self.init(matchLabels: json.stringMap("matchLabels"), matchExpressions: expressions)
    }

    public func matches(_ labels: [String: String]) -> Bool {
        matchLabels.allSatisfy { labels[$0.key] == $0.value }
            && matchExpressions.allSatisfy { expression in
                let value = labels[expression.key]
                switch expression.operator {
                case .in: return value.map(expression.values.contains) ?? false
                case .notIn: return value.map { !expression.values.contains($0) } ?? true
                case .exists: return value != nil
                case .doesNotExist: return value == nil
                }
            }
    }
}
