import FoundationEssentials
import Shared
import SharedIO

// Stage 2, after the copy: the copy restored here (a throw-away etcd, or
// SQLite's own check of a K3s copy).
extension UpgradePipeline {
    /// Restores the copy of an etcd snapshot into a temporary data folder
    /// beside it, starts a one-member etcd on loopback over it, counts its
    /// keys, reads a sample and compares its revision with the snapshot's;
    /// then stops it and removes the folder. A K3s archive is unpacked
    /// there first: its etcd snapshot goes the same way, its SQLite copy
    /// through SQLite's integrity check and a count of kine's rows. A
    /// snapshot that does not restore fails the job before any node. What
    /// was found, or `nil` when nothing was rehearsed (turned off, or a
    /// backup nothing here restores: MicroK8s' dqlite).
    func rehearseRestore(of copy: String, job: JobContext) async throws -> String? {
        guard let rehearsal = settings.restoreRehearsal else { return nil }
        let form = settings.distribution.backupForm
        guard form != .opaque else {
            try await job.record(
                .info,
                "restore not rehearsed: nothing here restores a \(settings.distribution.name) backup (its listing "
                    + "was checked)", stage: .snapshot)
            return nil
        }
        let etcdTools = [rehearsal.etcd, rehearsal.restorer, rehearsal.etcdctl]
        try Self.require(form == .etcdSnapshot ? etcdTools : ["tar"])
        let started = job.now()
        let folder = copy + ".rehearsal"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // A copy that does not restore is no rollback point: it goes.
        let failure = { (reason: String) in
            try? FileManager.default.removeItem(atPath: copy)
            return JobFailure(
                "the snapshot \(copy) does not restore, so it was removed and no node was touched: \(reason)")
        }
        do {
            try? FileManager.default.removeItem(atPath: folder)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let log = folder + "/steps.log"
            var snapshot = copy
            if form == .k3sArchive {
                let unpacked = folder + "/archive"
                try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
                let unpack = try await LocalProcess.run(
                    RestoreRehearsal.unpack(copy, into: unpacked), logFile: log, timeout: .seconds(600))
                guard unpack.succeeded else { throw failure("tar: \(Self.tail(unpack.output))") }
                let kind = (try? String(contentsOfFile: unpacked + "/datastore", encoding: .utf8))?
                    .filter { !$0.isWhitespace }
                switch kind {
                case "etcd":
                    try Self.require(etcdTools)
                    snapshot = unpacked + "/etcd-snapshot"
                case "sqlite":
                    try Self.require(["sqlite3"])
                    let checked = try await LocalProcess.run(
                        RestoreRehearsal.sqliteCheck(unpacked + "/state.db"), logFile: log, timeout: .seconds(600))
                    guard checked.succeeded else { throw failure("sqlite3: \(Self.tail(checked.output))") }
                    switch RestoreRehearsal.sqliteVerdict(checked.output) {
                    case let .failure(error): throw failure("\(error)")
                    case let .success(rows):
                        let text =
                            "restore rehearsed: the SQLite copy is intact (integrity_check ok), \(rows) kine rows, "
                            + "in \(JobContext.format(job.now() - started))"
                        try await job.record(.info, text, stage: .snapshot)
                        return text
                    }
                default: throw failure("the archive's ./datastore names no etcd or sqlite copy: \(kind ?? "none")")
                }
            }
            let (keys, revision, sample) = try await restoreIntoEtcd(
                snapshot, folder: folder, log: log, rehearsal: rehearsal, failure: failure)
            let text =
                "restore rehearsed: \(keys) keys, revision \(revision), in "
                + JobContext.format(job.now() - started) + " (sample: \(sample.joined(separator: ", ")))"
            try await job.record(.info, text, stage: .snapshot)
            return text
        } catch let error as JobFailure {
            throw error
        } catch { throw failure("\(error)") }
    }

    /// Fails the job before any node unless every tool is on PATH.
    private static func require(_ tools: [String]) throws {
        let missing = tools.filter { LocalProcess.find($0) == nil }
        guard missing.isEmpty else {
            throw JobFailure(
                "the restore rehearsal needs \(missing.joined(separator: ", ")) here (on PATH; the image ships them), "
                    + "so no node was touched; or turn it off with --restore-rehearsal false")
        }
    }

    /// The etcd snapshot file restored into `folder` and served by a
    /// one-member etcd on loopback, counted, sampled and stopped; what it
    /// held, or the failure `failure` makes of what went wrong.
    private func restoreIntoEtcd(
        _ snapshotFile: String, folder: String, log: String, rehearsal: RestoreRehearsal,
        failure: (String) -> JobFailure
    ) async throws -> (keys: Int, revision: Int, sample: [String]) {
        let status = try await LocalProcess.run(
            rehearsal.status(of: snapshotFile), logFile: log, timeout: .seconds(120))
        guard status.succeeded else { throw failure("snapshot status: \(Self.tail(status.output))") }
        let snapshot = try SnapshotStatus(json: status.output)
        let peer = "http://127.0.0.1:\(try LocalProcess.freeLoopbackPort())"
        let clientPort = try LocalProcess.freeLoopbackPort()
        let client = "http://127.0.0.1:\(clientPort)"
        let data = folder + "/data"
        let restored = try await LocalProcess.run(
            rehearsal.restore(snapshotFile, into: data, peerURL: peer), logFile: log, timeout: .seconds(600))
        guard restored.succeeded else { throw failure("snapshot restore: \(Self.tail(restored.output))") }
        let server = try LocalProcess.start(
            rehearsal.server(dataDir: data, clientURL: client, peerURL: peer), logFile: folder + "/etcd.log")
        let figures: Result<(keys: Int, revision: Int, sample: [String]), PlanError>
        do {
            var healthy = false
            let deadline = ContinuousClock.now + .seconds(60)
            while !healthy && ContinuousClock.now < deadline {
                // etcdctl's first dial to a port nobody listens on yet
                // backs off for a second: it is asked once etcd listens.
                if LocalProcess.acceptsConnections(onLoopbackPort: clientPort) {
                    healthy =
                        (try? await LocalProcess.run(rehearsal.health(client), logFile: log, timeout: .seconds(10)))?
                        .succeeded ?? false
                }
                if !healthy { try await Task.sleep(for: .milliseconds(20)) }
            }
            guard healthy else {
                let said = (try? String(contentsOfFile: folder + "/etcd.log", encoding: .utf8)) ?? ""
                throw failure("the restored etcd did not become healthy within 60 s: \(Self.tail(said))")
            }
            let count = try await LocalProcess.run(rehearsal.count(client), logFile: log, timeout: .seconds(300))
            let sample = try await LocalProcess.run(rehearsal.sample(client), logFile: log, timeout: .seconds(60))
            figures = RestoreRehearsal.verdict(
                countOutput: count.output, sampleOutput: sample.output, snapshot: snapshot)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
        switch figures {
        case let .failure(error): throw failure("\(error)")
        case let .success(found): return found
        }
    }
}
