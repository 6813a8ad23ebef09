/// The server's answer to a `POST /execute` before it queues anything.
public enum Admission: Sendable, Equatable {
    /// Queue the job.
    case accepted
    /// The cluster already runs the target; the text says so.
    case nothingToDo(String)
    /// The request breaks a rule; the text names it. Nothing is queued.
    case refused(String)
}

/// What a token holder may dispatch, judged against the live cluster: the
/// server enforces the same policy as the detector, so a request that
/// names the wrong `kind`, or a minor the policy forbids, is refused
/// before it can run a real upgrade.
public enum ExecuteAdmission {
    /// Judges `request` against the versions running now.
    ///
    /// - `kind` must match the target: `patch` stays in the oldest minor
    ///   running anywhere (API servers and kubelets) and `minor` is exactly
    ///   the next one, so that a minor always rewrites the apt sources.
    /// - A cluster that runs the target everywhere, with no node left
    ///   cordoned by this tool, has nothing to do.
    /// - The version-skew rules hold, and no kubelet would skip a minor.
    /// - A minor needs `policy.allowMinor` and a patch of at least
    ///   `policy.minimumMinorPatch`.
    public static func judge(
        _ request: ExecuteRequest, apiServers: [KubeVersion], nodes: [NodeFacts], policy: DetectionPolicy
    ) -> Admission {
        let target = request.targetVersion
        guard !apiServers.isEmpty else {
            return .refused("the API server version is unknown, so the request cannot be checked")
        }
        let unreadable = nodes.filter { $0.kubelet == nil }.map(\.name)
        guard unreadable.isEmpty else {
            return .refused("unreadable kubelet version on \(unreadable.joined(separator: ", "))")
        }
        let kubelets = nodes.compactMap { node in node.kubelet.map { (node: node.name, version: $0) } }
        let releases = apiServers.map(\.release) + kubelets.map(\.version.release)
        if let mismatch = buildMismatch(target, running: kubelets) { return .refused(mismatch) }
        let leftCordoned = nodes.filter { $0.unschedulable && $0.cordonedBy != nil }.map(\.name)
        if releases.allSatisfy({ $0 == target.release }) && leftCordoned.isEmpty {
            return .nothingToDo("every API server and kubelet already runs \(target); nothing to do")
        }
        if case let .refused(violations) = SkewPolicy.evaluateClusterUpgrade(
            apiServers: apiServers, kubelets: kubelets, to: target)
        {
            return .refused(violations.map(\.description).joined(separator: "; "))
        }
        // The skew rules keep the major and the API servers' minors in line;
        // a kubelet may trail by up to three minors, but is upgraded one at a time.
        let oldest = releases.min() ?? target
        if let behind = kubelets.first(where: { target.minor - $0.version.minor > 1 }) {
            return .refused(
                "kubelet on \(behind.node) runs \(behind.version), more than one minor behind \(target); "
                    + "kubelets are upgraded one minor at a time: move it to \(target.major).\(target.minor - 1) first")
        }
        let needed: UpgradeKind = target.minor > oldest.minor ? .minor : .patch
        guard request.kind == needed else {
            switch needed {
            case .minor:
                return .refused(
                    "\(target) is a minor upgrade from \(oldest) (the oldest version running): send kind minor")
            case .patch:
                return .refused(
                    "\(target) is a patch of \(oldest.minorLine), the minor the cluster runs: send kind patch "
                        + "(kind minor takes exactly the next minor, \(oldest.major).\(oldest.minor + 1))")
            }
        }
        if needed == .minor {
            guard policy.allowMinor else {
                return .refused("minor upgrades are not allowed by this server's policy (--allow-minor false)")
            }
            guard target.patch >= policy.minimumMinorPatch else {
                return .refused(
                    "\(target) is below this server's --minor-min-patch \(policy.minimumMinorPatch): "
                        + "the minor waits for \(target.minorLine).\(policy.minimumMinorPatch)")
            }
        }
        return .accepted
    }

    /// A K3s cluster is upgraded to a K3s release (`1.34.6+k3s1`, as the
    /// channel server names it), and a K3s release names nothing else.
    static func buildMismatch(
        _ target: KubeVersion, running kubelets: [(node: String, version: KubeVersion)]
    )
        -> String?
    {
        guard let sample = kubelets.first(where: { ($0.version.k3sBuild != nil) != (target.k3sBuild != nil) }) else {
            return nil
        }
        if target.k3sBuild == nil {
            return "kubelet on \(sample.node) runs the K3s release \(sample.version.release): name a K3s release "
                + "as the target, like \(target)+k3s1 (the channel server lists them)"
        }
        return
            "\(target) is a K3s release, but kubelet on \(sample.node) runs \(sample.version.release), which is not K3s"
    }
}
