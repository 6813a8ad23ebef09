import FoundationEssentials
import Shared
import SharedIO

// The node updater's hold (MicroK8s: snapd's refresh hold of microk8s):
// set on every node at pre-flight, watched for drift before each node, and
// a failed node's revert.
extension UpgradePipeline {
    /// One node's hold as found, and after it was set when it was not there.
    struct HoldReading: Sendable {
        var found: HoldVerdict
        var now: HoldVerdict
    }

    /// Every node's hold, asked on a few nodes at a time; a hold not found
    /// is set when `set` (never in a dry run).
    func holds(_ hold: UpdaterHold, on nodes: [NodeFacts], set: Bool) async -> [String: HoldReading] {
        await withTaskGroup(of: (String, HoldReading).self) { group in
            var readings: [String: HoldReading] = [:]
            var pending = nodes[...]
            for _ in 0..<min(Self.holdConcurrency, pending.count) {
                let node = pending.removeFirst()
                group.addTask { (node.name, await self.hold(hold, on: node, set: set)) }
            }
            while let (name, reading) = await group.next() {
                readings[name] = reading
                if let node = pending.popFirst() {
                    group.addTask { (node.name, await self.hold(hold, on: node, set: set)) }
                }
            }
            return readings
        }
    }

    static let holdConcurrency = 8

    private func hold(_ hold: UpdaterHold, on node: NodeFacts, set: Bool) async -> HoldReading {
        do {
            let version = try await probe(RemoteCommand(hold.version, asRoot: false), on: node)
            let check = try await probe(RemoteCommand(hold.check, asRoot: false), on: node)
            let found = hold.verdict(version: version, set: nil, check: check)
            guard found == .notHeld, set else { return HoldReading(found: found, now: found) }
            let setting = try await probe(RemoteCommand(hold.set), on: node)
            let after = setting.succeeded ? try await probe(RemoteCommand(hold.check, asRoot: false), on: node) : nil
            return HoldReading(found: found, now: hold.verdict(version: version, set: setting, check: after))
        } catch {
            let failed = HoldVerdict.failed("\(error)")
            return HoldReading(found: failed, now: failed)
        }
    }

    private func probe(_ command: RemoteCommand, on node: NodeFacts) async throws -> ProbeOutput {
        let result = try await shell.run(command, on: node, onOutput: nil)
        return ProbeOutput(exitStatus: result.exitStatus, stdout: result.stdoutText, stderr: result.stderrText)
    }

    /// Pre-flight's holds: set where missing (a dry run only reads), each
    /// one set recorded; `nil` when the distribution has no updater to hold.
    func holdsAtStart(_ nodes: [NodeFacts], job: JobContext) async throws -> (String, [String: HoldVerdict])? {
        guard let hold = settings.distribution.hold else { return nil }
        let readings = await holds(hold, on: nodes, set: !job.request.dryRun)
        for (node, reading) in readings.sorted(by: { $0.key < $1.key }) where reading.found == .notHeld {
            if job.request.dryRun {
                try await job.record(.wouldChange, "would set \(hold.what) on \(node)", stage: .preflight, node: node)
            } else if reading.now == .held {
                try await job.record(.info, "set \(hold.what) on \(node)", stage: .preflight, node: node)
            }
        }
        let held = Set(readings.filter { $0.value.now == .held }.keys)
        job.state.withLock { $0.held.formUnion(held) }
        return (hold.what, readings.mapValues(\.now))
    }

    /// Before each node: a hold that disappeared since pre-flight (drift)
    /// is reported (an event, a notice, `k8s_upgrade_hold_lifted`) and set
    /// again; one that cannot be set again fails the job, as pre-flight
    /// would have.
    func checkHoldDrift(job: JobContext, stage: UpgradeStage) async throws {
        guard let hold = settings.distribution.hold else { return }
        let nodes = try await cluster.nodes()
        let readings = await holds(hold, on: nodes, set: !job.request.dryRun)
        let held = job.state.withLock { $0.held }
        // Not held before by this run (pre-flight did not run, or the node
        // joined since): set now, which is no drift.
        for (node, reading) in readings.sorted(by: { $0.key < $1.key })
        where !held.contains(node) && reading.found == .notHeld && reading.now == .held {
            job.state.withLock { _ = $0.held.insert(node) }
            try await job.record(.info, "set \(hold.what) on \(node)", stage: stage, node: node)
        }
        let lifted = readings.filter { held.contains($0.key) && $0.value.found == .notHeld }.sorted { $0.key < $1.key }
        guard !lifted.isEmpty else { return }
        setGauges(job) { gauges in
            for (node, _) in lifted { gauges.holdLifted.insert(node) }
        }
        var lost: [String] = []
        for (node, reading) in lifted {
            let again: String
            switch reading.now {
            case .held: again = "set again"
            case .notHeld: again = "a real run sets it again"
            case let .failed(reason):
                again = "could not set it again: \(reason)"
                lost.append(node)
            }
            let text = "\(hold.what) was lifted on \(node) during the run (drift); \(again)"
            try await job.record(.warning, text, stage: stage, node: node)
            notify(
                job, .warning, "\(node): the refresh hold was lifted",
                [text, "Lift it only between jobs: \(Shell.command(hold.lift))"])
        }
        if !lost.isEmpty {
            throw JobFailure(
                "\(hold.what) is gone on \(lost.joined(separator: ", ")) and could not be set again, so the node's "
                    + "updater may upgrade it behind this job")
        }
    }

    // MARK: - Revert

    /// Takes a node whose step failed, or that never came back at the
    /// target, back to `release` with the distribution's revert step and
    /// waits for it there; what happened, for the failure's message.
    func revert(
        _ work: NodeWork, to release: KubeVersion, arguments: [String], after error: any Error, job: JobContext
    ) async -> String {
        let node = work.node
        try? await job.record(
            .warning, "reverting \(node.name) to \(release) after: \(error)", stage: work.stage, node: node.name)
        notify(job, .warning, "\(node.name): reverting to \(release)", ["\(error)"])
        do {
            try await runDetached(job, arguments, purpose: "revert-\(release)", on: node, stage: work.stage)
            try await job.wait(
                for: "\(node.name) to be Ready with its kubelet back at \(release)", stage: work.stage,
                node: node.name, timeout: settings.nodeReadyTimeout, finishingOnShutdown: true
            ) {
                guard let facts = try? await self.cluster.node(node.name) else { return "node unreadable" }
                var missing: [String] = []
                if !facts.isReady { missing.append(facts.readiness) }
                if facts.kubelet?.release != release.release {
                    missing.append("kubelet \(facts.kubelet?.description ?? "?")")
                }
                return missing.isEmpty ? nil : missing.joined(separator: ", ")
            }
            // The node step's run succeeded before the revert undid it: a
            // resume must run it anew, not report that success again.
            let upgrade = NodeRun.id(
                job: job.id, purpose: Self.nodeStepPurpose(work.step.role, job.request.targetVersion),
                node: node.name)
            let forget = try await shell.run(
                RemoteCommand(
                    ["bash", "-c", NodeRun.launcher, "update_k8s.sh", "--forget-run", upgrade],
                    stdin: settings.nodeScript, timeout: .seconds(90)), on: node, onOutput: nil)
            if !forget.succeeded {
                try? await job.record(
                    .warning,
                    "run \(upgrade) on \(node.name) could not be forgotten (\(Self.tail(forget.stderrText))): a resume "
                        + "may find its old success and revert \(node.name) again", stage: work.stage, node: node.name)
            }
            let text = "\(node.name) was reverted to \(release) (update_k8s.sh \(Shell.command(arguments)))"
            try? await job.record(.info, text, stage: work.stage, node: node.name)
            let cordoned = (try? await cluster.node(node.name))?.cordonedBy != nil
            notify(
                job, .warning, "\(node.name) reverted",
                [text] + (cordoned ? ["It stays cordoned by this job until the job is resumed."] : []))
            return text
        } catch {
            let text =
                "the revert of \(node.name) to \(release) failed too: \(error); see the runbook's rollback section"
            try? await job.record(.warning, text, stage: work.stage, node: node.name)
            notify(job, .failure, "\(node.name): revert failed", [text])
            return text
        }
    }
}
