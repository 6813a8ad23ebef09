import FoundationEssentials
import Shared
import SharedIO

// Stage 2: the pre-upgrade snapshot and its retention.
extension UpgradePipeline {
    // MARK: - Stage 2: snapshot

    func snapshot(_ job: JobContext) async throws -> StageOutcome {
        let master = try masterNode(try await cluster.nodes(), job: job)
        let target = job.request.targetVersion
        let path =
            "\(settings.backupDir)/k8s-upgrade-pre-\(target)-\(Int(job.now()))\(settings.distribution.snapshotExtension)"
        let save = RemoteCommand(
            steps: [["mkdir", "-p", settings.backupDir], settings.distribution.snapshotSave(to: path)],
            timeout: .seconds(600))
        let status = RemoteCommand(settings.distribution.snapshotStatus(of: path), timeout: .seconds(120))
        if let (first, owner) = job.state.withLock({ $0.firstSnapshot }) {
            let whose =
                owner == job.id
                ? "that this job took when it first ran"
                : "that job \(owner) took before the first change it left half-done"
            let kept = RemoteCommand(settings.distribution.snapshotStatus(of: first), timeout: .seconds(120))
            let checked = try await shell.run(kept, on: master, onOutput: nil)
            if checked.succeeded, let verified = try? settings.distribution.snapshotSummary(checked.stdoutText) {
                let text =
                    "keeping the pre-upgrade snapshot \(first) \(whose) (\(verified)): "
                    + "a mid-upgrade snapshot does not replace the rollback point; to take a new one, remove the "
                    + "namespace annotation \(cluster.annotationPrefix)/snapshot-path and resume"
                try await job.record(.info, text, stage: .snapshot)
                job.state.withLock { $0.report.snapshot = verified }
                setGauges(job) { $0.snapshotTaken = true }
                return .done(text)
            }
            try await job.record(
                .warning,
                "the pre-upgrade snapshot \(first) \(whose) is gone or does not verify "
                    + "(\(Self.tail(checked.stderrText + checked.stdoutText))); taking a new one",
                stage: .snapshot)
        }
        guard let verified = try await saveSnapshot(save, verifying: status, at: path, on: master, job: job) else {
            return .done("dry run: would save and verify \(path)")
        }
        try await job.record(.info, "snapshot \(path): \(verified)", stage: .snapshot)
        try await cluster.annotateNamespace(["snapshot-path": path])
        job.state.withLock {
            $0.report.snapshotPath = path
            $0.report.snapshot = verified
        }
        if let copy = try await copyOff(path, from: master, job: job) {
            try await cluster.annotateNamespace(["snapshot-copy": copy.path, "snapshot-sha256": copy.sha256])
            job.state.withLock {
                $0.report.snapshotCopy = copy.path
                $0.report.snapshotSHA256 = copy.sha256
            }
            if let rehearsed = try await rehearseRestore(of: copy.path, job: job) {
                job.state.withLock { $0.report.snapshotRehearsal = rehearsed }
            }
            if let folder = settings.backupCopyDir {
                pruneCopies(in: folder, keeping: [URL(fileURLWithPath: copy.path).lastPathComponent], job: job)
            }
        }
        try await pruneSnapshots(job, on: master, keeping: [path])
        setGauges(job) { $0.snapshotTaken = true }
        return .done("saved \(path): \(verified)")
    }

    /// The snapshot copied off the master to `--backup-copy-dir` (the
    /// orchestrator's backup volume), so that a broken master does not take
    /// the rollback point with it: its SHA-256 computed on the master and
    /// on the copy as it was written, and compared; a copy that differs is
    /// removed and fails the job before any node.
    func copyOff(
        _ path: String, from master: NodeFacts, job: JobContext
    ) async throws -> (path: String, sha256: String)? {
        guard let folder = settings.backupCopyDir else {
            try await job.record(
                .warning, "the snapshot stays on \(master.name) alone: no --backup-copy-dir to copy it to",
                stage: .snapshot)
            return nil
        }
        let hashed = try await shell.run(
            RemoteCommand(["sha256sum", "--", path], timeout: .seconds(600)), on: master, onOutput: nil)
        let remote = hashed.stdoutText.split(separator: " ").first.map(String.init) ?? ""
        guard hashed.succeeded, remote.count == 64, remote.allSatisfy(\.isHexDigit) else {
            throw JobFailure(
                "the snapshot \(path) could not be hashed on \(master.name): "
                    + Self.tail(hashed.stderrText + hashed.stdoutText))
        }
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let local = folder + "/" + name
        let started = job.now()
        let copied: SSHDownload
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            copied = try await shell.download(path, from: master, to: local, timeout: settings.scriptTimeout)
        } catch { throw JobFailure("the snapshot \(path) could not be copied off \(master.name): \(error)") }
        guard copied.sha256 == remote else {
            try? FileManager.default.removeItem(atPath: local)
            throw JobFailure(
                "the copy of the snapshot \(path) differs from the one on \(master.name) (sha256 \(copied.sha256) "
                    + "here, \(remote) there), so it was removed; no node was touched")
        }
        try await job.record(
            .info,
            "snapshot copied off \(master.name) to \(local): sha256 \(remote) on both ends, \(copied.bytes) bytes, in "
                + JobContext.format(job.now() - started), stage: .snapshot)
        return (local, remote)
    }

    /// Retention of the copies, as on the master: the newest
    /// `--snapshot-keep` and the rollback point in flight; run once the new
    /// copy proved itself, so a bad one never pushes a good one out.
    func pruneCopies(in folder: String, keeping protected: Set<String>, job: JobContext) {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { $0.hasPrefix("k8s-upgrade-pre-") && !$0.hasSuffix(".partial") }
        let first = job.state.withLock { $0.firstSnapshot?.path }.flatMap { $0.split(separator: "/").last }.map(
            String.init)
        let doomed = SnapshotRetention.prune(
            names, keep: settings.snapshotKeep, protected: protected.union(first.map { [$0] } ?? []))
        for name in doomed { try? FileManager.default.removeItem(atPath: folder + "/" + name) }
    }

    /// Saves the snapshot after a health check, and verifies it.
    func takeSnapshot(
        _ save: RemoteCommand, verifying status: RemoteCommand, at path: String, on master: NodeFacts,
        job: JobContext
    ) async throws -> String {
        // A save against a datastore that does not answer waits out its
        // whole timeout; a health check first fails in seconds.
        let datastore = settings.distribution.datastore
        switch await datastoreHealth(on: master) {
        case let .success(health) where health.hasQuorum: break
        case let .success(health):
            throw JobFailure("\(datastore) snapshot on \(master.name) failed: no quorum: \(health.summary)")
        case let .failure(error):
            throw JobFailure("\(datastore) snapshot on \(master.name) failed: \(datastore) is not healthy: \(error)")
        }
        let saved = try await runRemote(job, save, on: master, stage: .snapshot)
        guard saved.succeeded else {
            throw JobFailure(
                "\(datastore) snapshot on \(master.name) failed: \(Self.tail(saved.stderrText + saved.stdoutText))")
        }
        let checked = try await shell.run(status, on: master, onOutput: nil)
        let summary: String
        do {
            guard checked.succeeded else { throw PlanError(Self.tail(checked.stderrText)) }
            summary = try settings.distribution.snapshotSummary(checked.stdoutText)
        } catch { throw JobFailure("the \(datastore) snapshot \(path) could not be verified: \(error)") }
        let confirmed = try await confirmSnapshot(saveOutput: saved.stdoutText, path: path, job: job)
        return confirmed.isEmpty ? summary : "\(summary); \(confirmed)"
    }

    /// The datastore's own record of the snapshot just saved, where it
    /// keeps one in the API (K3s' `ETCDSnapshotFile`, written shortly after
    /// the save: waited for, at most a minute); where the API does not
    /// serve such records (an older release), the save's own check.
    func confirmSnapshot(saveOutput: String, path: String, job: JobContext) async throws -> String {
        let distribution = settings.distribution
        guard let recordsPath = distribution.snapshotRecordsPath,
            distribution.snapshotRecord(saveOutput: saveOutput, in: []) != nil
        else { return "" }
        let failure = { (reason: String) in
            JobFailure("the \(distribution.datastore) snapshot \(path) could not be confirmed: \(reason)")
        }
        guard try await cluster.client.getIfExists(recordsPath) != nil else {
            switch distribution.snapshotUnrecorded(saveOutput: saveOutput) {
            case let .success(text): return text
            case let .failure(error): throw failure("\(error)")
            }
        }
        let client = cluster.client
        let read = { @Sendable () async -> SnapshotRecord in
            do {
                let items = try await client.list(recordsPath)
                return distribution.snapshotRecord(saveOutput: saveOutput, in: items) ?? .missing("no record")
            } catch { return .missing("the records are unreadable: \(error)") }
        }
        try await job.wait(
            for: "the API's record (\(recordsPath)) of the snapshot", stage: .snapshot, timeout: .seconds(60)
        ) {
            if case let .missing(reason) = await read() { return reason }
            return nil
        }
        switch await read() {
        case let .confirmed(text): return text
        case let .failed(reason), let .missing(reason): throw failure(reason)
        }
    }

    /// Retention: the newest `snapshotKeep` snapshots stay, and the rollback
    /// point in flight whatever its age; `.part` files of killed saves go.
    func pruneSnapshots(_ job: JobContext, on master: NodeFacts, keeping protected: Set<String>) async throws {
        let list = RemoteCommand([
            "find", settings.backupDir, "-maxdepth", "1", "-type", "f", "-name", "k8s-upgrade-pre-*", "-printf",
            "%f\\n",
        ])
        let listed = try await shell.run(list, on: master, onOutput: nil)
        guard listed.succeeded else {
            try await job.record(
                .warning, "snapshot retention skipped: \(Self.tail(listed.stderrText))", stage: .snapshot)
            return
        }
        let names = listed.stdoutText.split(separator: "\n").map(String.init)
        let kept = Set(protected.map { $0.split(separator: "/").last.map(String.init) ?? $0 })
        let doomed = SnapshotRetention.prune(names, keep: settings.snapshotKeep, protected: kept)
        guard !doomed.isEmpty else { return }
        let paths = doomed.map { "\(settings.backupDir)/\($0)" }
        let removed = try await runRemote(job, RemoteCommand(["rm", "-f", "--"] + paths), on: master, stage: .snapshot)
        try await job.record(
            removed.succeeded ? .info : .warning,
            "snapshot retention (newest \(settings.snapshotKeep) kept, and the rollback point in flight): "
                + (removed.succeeded ? "removed " : "could not remove ") + doomed.joined(separator: ", "),
            stage: .snapshot)
    }
}
