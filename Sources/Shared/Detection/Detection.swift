/// What the detector found about the running cluster.
public struct RunningVersions: Sendable, Equatable {
    /// The API server's `gitVersion`.
    public var apiServer: KubeVersion
    /// Every node's kubelet version.
    public var kubelets: [String: KubeVersion]

    public init(apiServer: KubeVersion, kubelets: [String: KubeVersion]) {
        self.apiServer = apiServer
        self.kubelets = kubelets
    }

    /// The distinct releases running (API server and kubelets), oldest first.
    public var distinctReleases: [KubeVersion] {
        Set([apiServer.release] + kubelets.values.map(\.release)).sorted()
    }

    /// One release everywhere, or `nil` when the cluster is caught mid-upgrade.
    public var uniformRelease: KubeVersion? {
        let releases = distinctReleases
        return releases.count == 1 ? releases[0] : nil
    }
}

/// What the package repository offers for the next minor.
public enum NextMinor: Sendable, Equatable {
    /// `v1.<N+1>/deb/Release` answered 403 or 404: not published yet.
    case notPublished(KubeVersion)
    /// Published, with its newest kubeadm release.
    case published(newest: KubeVersion)
}

/// Which upgrades the detector may dispatch.
public struct DetectionPolicy: Sendable, Equatable {
    /// Dispatch a minor upgrade when one is available and the current minor is up to date.
    public var allowMinor: Bool
    /// Only take a new minor once its newest patch is at least this (`.2` waits for 1.35.2).
    public var minimumMinorPatch: Int

    public init(allowMinor: Bool = false, minimumMinorPatch: Int = 0) {
        self.allowMinor = allowMinor
        self.minimumMinorPatch = minimumMinorPatch
    }
}

/// The detector's verdict: a value with its reasons.
public enum Decision: Sendable, Equatable {
    /// Move to the newest patch of the running minor.
    case patch(to: KubeVersion)
    /// Move to the newest patch of the next minor.
    case minor(to: KubeVersion)
    /// Nothing to do; the reason says why (current, minor not allowed, not mature yet).
    case nothing(reason: String)
    /// Nodes and API server disagree: an upgrade is under way or stopped half-way.
    case midUpgrade(releases: [KubeVersion])

    /// The request to dispatch, if any.
    public var dispatch: (kind: UpgradeKind, target: KubeVersion)? {
        switch self {
        case .patch(let target): (.patch, target)
        case .minor(let target): (.minor, target)
        case .nothing, .midUpgrade: nil
        }
    }
}

/// The detection policy as a pure function: patch before minor, a minor
/// only when allowed (and mature enough), never more than one minor ahead,
/// nothing when current, nothing mid-upgrade.
public enum Detector {
    public static func decide(
        running: RunningVersions, newestPatch: KubeVersion?, nextMinor: NextMinor, policy: DetectionPolicy
    ) -> Decision {
        guard let current = running.uniformRelease else {
            return .midUpgrade(releases: running.distinctReleases)
        }
        if let newestPatch, newestPatch.isSameMinor(as: current), !newestPatch.isPreRelease, newestPatch > current {
            return .patch(to: newestPatch.release)
        }
        switch nextMinor {
        case .notPublished(let minor):
            return .nothing(reason: "\(current) is the newest patch; \(minor.minorLine) is not published")
        case .published(let newest):
            guard newest.major == current.major, newest.minor == current.minor + 1, !newest.isPreRelease else {
                return .nothing(reason: "\(current) is the newest patch; \(newest) is not the next minor")
            }
            guard policy.allowMinor else {
                return .nothing(reason: "\(current) is the newest patch; minor \(newest) available but not allowed")
            }
            guard newest.patch >= policy.minimumMinorPatch else {
                return .nothing(
                    reason:
                        "\(current) is the newest patch; minor \(newest) waits for patch \(newest.major).\(newest.minor).\(policy.minimumMinorPatch)"
                )
            }
            return .minor(to: newest.release)
        }
    }
}

/// The Pushgateway group the detector replaces on every run, in the text
/// exposition format.
public enum DetectionMetrics {
    /// The metrics of a run that reached a decision.
    public static func render(
        decision: Decision, running: KubeVersion?, newestPatch: KubeVersion?, nextMinor: NextMinor?, timestamp: Int
    ) -> String {
        var lines = [
            "# HELP k8s_upgrade_available An upgrade the detector found (1), by kind, running and target version.",
            "# TYPE k8s_upgrade_available gauge",
        ]
        if let running {
            if let patch = newestPatch, patch.isSameMinor(as: running), patch > running {
                lines.append(sample("patch", running, patch.release))
            }
            if case .published(let newest)? = nextMinor, newest.minor == running.minor + 1 {
                lines.append(sample("minor", running, newest.release))
            }
        }
        lines += [
            "# HELP k8s_version_check_last_run_timestamp When the detector last ran, in seconds since the epoch.",
            "# TYPE k8s_version_check_last_run_timestamp gauge",
            "k8s_version_check_last_run_timestamp \(timestamp)",
            "# HELP k8s_version_check_failed 1 when the last run failed before deciding, else 0.",
            "# TYPE k8s_version_check_failed gauge",
            "k8s_version_check_failed 0",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The metrics of a run that failed: no upgrade is claimed.
    public static func renderFailure(timestamp: Int) -> String {
        [
            "# HELP k8s_version_check_last_run_timestamp When the detector last ran, in seconds since the epoch.",
            "# TYPE k8s_version_check_last_run_timestamp gauge",
            "k8s_version_check_last_run_timestamp \(timestamp)",
            "# HELP k8s_version_check_failed 1 when the last run failed before deciding, else 0.",
            "# TYPE k8s_version_check_failed gauge",
            "k8s_version_check_failed 1",
        ].joined(separator: "\n") + "\n"
    }

    private static func sample(_ kind: String, _ running: KubeVersion, _ target: KubeVersion) -> String {
        "k8s_upgrade_available{kind=\"\(kind)\",running=\"\(running)\",target=\"\(target)\"} 1"
    }
}

/// The one human line a run prints, for example
/// `running 1.34.3, newest patch 1.34.5, next minor 1.35.2 available (not allowed), dispatched patch → 1.34.5, job 7`.
public enum DetectionSummary {
    public static func line(
        running: RunningVersions, newestPatch: KubeVersion?, nextMinor: NextMinor, policy: DetectionPolicy,
        outcome: String
    ) -> String {
        let runningText =
            running.uniformRelease.map { "running \($0)" }
            ?? "mid-upgrade (" + running.distinctReleases.map(\.description).joined(separator: ", ") + ")"
        let patchText = newestPatch.map { "newest patch \($0.release)" } ?? "newest patch unknown"
        let minorText: String
        switch nextMinor {
        case .notPublished(let minor):
            minorText = "next minor \(minor.minorLine) not published"
        case .published(let newest):
            let allowed =
                !policy.allowMinor
                ? "not allowed"
                : newest.patch < policy.minimumMinorPatch ? "waiting for .\(policy.minimumMinorPatch)" : "allowed"
            minorText = "next minor \(newest.release) available (\(allowed))"
        }
        return [runningText, patchText, minorText, outcome].joined(separator: ", ")
    }
}
