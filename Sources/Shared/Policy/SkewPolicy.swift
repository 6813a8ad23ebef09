/// Whether an upgrade is a patch (same minor) or a minor bump (next minor).
public enum UpgradeKind: String, Sendable, Codable, CaseIterable {
    case patch
    case minor
}

/// One rule of the Kubernetes version-skew policy that an upgrade would break.
///
/// Sources: the version-skew policy (kubelet never newer than the API
/// server, at most three minors older; API servers within one minor) and
/// kubeadm's `EnforceVersionPolicies` (one minor at a time, no downgrade).
public enum SkewViolation: Sendable, Equatable, CustomStringConvertible {
    /// The target is older than what the control plane already runs.
    case downgrade(from: KubeVersion, to: KubeVersion)
    /// The target changes the major version, which no tool supports.
    case majorChange(from: KubeVersion, to: KubeVersion)
    /// The target skips at least one minor; kubeadm upgrades one minor at a time.
    case skipsMinor(from: KubeVersion, to: KubeVersion)
    /// The API servers are already more than one minor apart.
    case apiServersTooFarApart(oldest: KubeVersion, newest: KubeVersion)
    /// A kubelet would be newer than the API server it talks to.
    case kubeletNewerThanAPIServer(node: String, kubelet: KubeVersion, apiServer: KubeVersion)
    /// A kubelet would fall more than three minors behind the API server.
    case kubeletTooOld(node: String, kubelet: KubeVersion, apiServer: KubeVersion)
    /// A pre-release was asked for; only releases are installed unattended.
    case preRelease(KubeVersion)
    /// No API server version was known, so no rule can be checked.
    case unknownAPIServerVersion

    public var description: String {
        switch self {
        case let .downgrade(from, to):
            "\(to) is older than the running control plane \(from); downgrades are not supported"
        case let .majorChange(from, to):
            "\(from) → \(to) changes the major version"
        case let .skipsMinor(from, to):
            "\(from) → \(to) skips a minor; kubeadm can upgrade only one minor at a time"
        case let .apiServersTooFarApart(oldest, newest):
            "API servers run \(oldest) and \(newest), more than one minor apart"
        case let .kubeletNewerThanAPIServer(node, kubelet, apiServer):
            "kubelet on \(node) would run \(kubelet), newer than the API server \(apiServer)"
        case let .kubeletTooOld(node, kubelet, apiServer):
            "kubelet on \(node) runs \(kubelet), more than three minors behind the API server \(apiServer); upgrade it first"
        case let .preRelease(version):
            "\(version) is a pre-release"
        case .unknownAPIServerVersion:
            "the API server version is unknown"
        }
    }
}

/// The verdict on a proposed cluster upgrade: a value with its reasons, never a bare Bool.
public enum SkewVerdict: Sendable, Equatable, CustomStringConvertible {
    /// The upgrade obeys every rule.
    case allowed(UpgradeKind)
    /// Every API server and kubelet already runs the target.
    case alreadyAtTarget
    /// The upgrade breaks these rules; nothing may be changed.
    case refused([SkewViolation])

    /// Whether the upgrade may go ahead.
    public var isAllowed: Bool {
        if case .allowed = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case let .allowed(kind): "allowed (\(kind.rawValue))"
        case .alreadyAtTarget: "already at target"
        case let .refused(violations): "refused: " + violations.map(\.description).joined(separator: "; ")
        }
    }
}

/// The version-skew rules, as pure functions over versions.
public enum SkewPolicy {
    /// The number of minors a kubelet may trail the API server (N-3 since 1.25).
    public static let maximumKubeletLag = 3

    /// Judges upgrading a whole cluster to `target`.
    ///
    /// - Parameters:
    ///   - apiServers: the versions the API servers run now (at least one).
    ///   - kubelets: each node's name and kubelet version now.
    ///   - target: the release to move to.
    public static func evaluateClusterUpgrade(
        apiServers: [KubeVersion], kubelets: [(node: String, version: KubeVersion)], to target: KubeVersion
    ) -> SkewVerdict {
        guard let oldestAPI = apiServers.min(), let newestAPI = apiServers.max() else {
            return .refused([.unknownAPIServerVersion])
        }
        var violations: [SkewViolation] = []
        if target.isPreRelease { violations.append(.preRelease(target)) }
        if oldestAPI.major != newestAPI.major || newestAPI.minor - oldestAPI.minor > 1 {
            violations.append(.apiServersTooFarApart(oldest: oldestAPI, newest: newestAPI))
        }
        if target.major != newestAPI.major {
            violations.append(.majorChange(from: newestAPI, to: target))
        } else if target < newestAPI {
            violations.append(.downgrade(from: newestAPI, to: target))
        } else if target.minor - oldestAPI.minor > 1 {
            violations.append(.skipsMinor(from: oldestAPI, to: target))
        }
        for (node, kubelet) in kubelets {
            if kubelet.release > target.release {
                violations.append(.kubeletNewerThanAPIServer(node: node, kubelet: kubelet, apiServer: target))
            } else if kubelet.major == target.major, target.minor - kubelet.minor > maximumKubeletLag {
                violations.append(.kubeletTooOld(node: node, kubelet: kubelet, apiServer: target))
            }
        }
        if !violations.isEmpty { return .refused(violations) }
        let everythingAtTarget =
            apiServers.allSatisfy { $0.release == target.release }
            && kubelets.allSatisfy { $0.version.release == target.release }
        if everythingAtTarget { return .alreadyAtTarget }
        return .allowed(target.minor > oldestAPI.minor ? .minor : .patch)
    }

    /// Judges moving one node's kubelet from `current` to `target` while the
    /// API servers run `apiServers`: the kubelet may never get ahead of the
    /// oldest API server, nor fall more than three minors behind it.
    public static func evaluateKubeletUpgrade(
        node: String, from current: KubeVersion, to target: KubeVersion, apiServers: [KubeVersion]
    ) -> SkewVerdict {
        guard let oldestAPI = apiServers.min() else { return .refused([.unknownAPIServerVersion]) }
        var violations: [SkewViolation] = []
        if target.isPreRelease { violations.append(.preRelease(target)) }
        if target.major != current.major {
            violations.append(.majorChange(from: current, to: target))
        } else if target.release < current.release {
            violations.append(.downgrade(from: current, to: target))
        }
        if target.release > oldestAPI.release {
            violations.append(.kubeletNewerThanAPIServer(node: node, kubelet: target, apiServer: oldestAPI))
        } else if target.major == oldestAPI.major, oldestAPI.minor - target.minor > maximumKubeletLag {
            violations.append(.kubeletTooOld(node: node, kubelet: target, apiServer: oldestAPI))
        }
        if !violations.isEmpty { return .refused(violations) }
        if target.release == current.release { return .alreadyAtTarget }
        return .allowed(target.minor > current.minor ? .minor : .patch)
    }
}
