import FoundationEssentials
public import Shared
import Synchronization

/// A job as stored: the request, its state and times, what its events add
/// up to, and its result once finished.
public struct JobRecord: Sendable, Equatable {
    public var id: Int64
    public var request: ExecuteRequest
    public var state: JobState
    public var createdAt: Double
    public var startedAt: Double?
    public var finishedAt: Double?
    public var updatedAt: Double
    public var progress: JobProgress
    /// The summary report, once the job has one.
    public var result: JSONValue?
    public var eventCount: Int
    /// The stored row's revision: it moves with every change of the job,
    /// so what was made from a record of one revision stays true of it.
    public var revision: Int64 = 0
}

/// Why a job could not be created or resumed: another one holds the slot.
public struct ActiveJobConflict: Error, Sendable, Equatable {
    public let active: JobRecord
}

/// Jobs and their ordered events in an SQLite file. Every change is one
/// transaction: the event, the new state and the folded progress are
/// committed together, before the caller acts on them.
///
/// Every change of a job's row also adds one to its `revision`, so a read
/// can keep the records it has decoded (the stored progress, result and
/// request are JSON) and decode a row again only when its revision moved:
/// the API's reads then cost a primary-key lookup per job instead of a
/// JSON decoding. The kept records come from reads, which see only
/// committed rows, and from this store's writes once committed; a write of
/// another process moves the revision too. A write starts from the kept
/// record when the row's revision is still its own, so appending an event
/// does not decode the job's progress again (at thousands of nodes that
/// decoding was most of the service's work).
public final class JobStore: Sendable {
    private let database: SQLiteDatabase
    private let decoded = Mutex<[Int64: JobRecord]>([:])
    /// Signalled after every write: a job or its events changed.
    public let changes = ChangeSignal()
    /// At most this many decoded records are kept; past it the memo starts over.
    static let decodedLimit = 512

    /// Opens or creates the store at `path`.
    public init(path: String) async throws {
        database = try await SQLiteDatabase(path: path)
        try await database.write { connection in
            try connection.execute(
                """
                CREATE TABLE IF NOT EXISTS jobs (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    request TEXT NOT NULL,
                    state TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    started_at REAL,
                    finished_at REAL,
                    updated_at REAL NOT NULL,
                    progress TEXT NOT NULL,
                    result TEXT,
                    event_count INTEGER NOT NULL DEFAULT 0,
                    revision INTEGER NOT NULL DEFAULT 0
                )
                """)
            // A store written before revisions were kept gains the column.
            let columns = try connection.query("PRAGMA table_info(jobs)").compactMap { $0[1].string }
            if !columns.contains("revision") {
                try connection.execute("ALTER TABLE jobs ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
            }
            try connection.execute(
                """
                CREATE TABLE IF NOT EXISTS events (
                    job_id INTEGER NOT NULL REFERENCES jobs(id),
                    seq INTEGER NOT NULL,
                    time REAL NOT NULL,
                    kind TEXT NOT NULL,
                    stage TEXT,
                    node TEXT,
                    message TEXT NOT NULL,
                    deadline REAL,
                    PRIMARY KEY (job_id, seq)
                ) WITHOUT ROWID
                """)
            try connection.execute("CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state)")
            try connection.execute(
                """
                CREATE TABLE IF NOT EXISTS job_nodes (
                    job_id INTEGER NOT NULL REFERENCES jobs(id),
                    idx INTEGER NOT NULL,
                    progress TEXT NOT NULL,
                    revision INTEGER NOT NULL,
                    PRIMARY KEY (job_id, idx)
                ) WITHOUT ROWID
                """)
            // The store's layout version: 1 once the nodes have rows of their own.
            if try connection.query("PRAGMA user_version").first?[0].int64 ?? 0 < 1 {
                try Self.moveNodesToTheirRows(connection)
                try connection.execute("PRAGMA user_version = 1")
            }
        }
    }

    /// A store written before nodes had rows of their own keeps them in
    /// each job's progress document: they move to their rows, once (not
    /// at every start: it reads every job's document).
    private static func moveNodesToTheirRows(_ connection: SQLiteDatabase.Connection) throws {
        let rows = try connection.query(
            "SELECT id, progress, revision FROM jobs WHERE json_array_length(progress, '$.nodes') > 0")
        for row in rows {
            guard let id = row[0].int64 else { continue }
            var progress = try JSONDecoder().decode(JobProgress.self, from: Data((row[1].string ?? "{}").utf8))
            try writeNodes(id, from: [], to: progress.nodes, revision: (row[2].int64 ?? 0) + 1, connection)
            progress.nodes = []
            try connection.execute(
                "UPDATE jobs SET progress = ?, revision = revision + 1 WHERE id = ?",
                [.text(try encode(progress)), .integer(id)])
        }
    }

    // MARK: - Reads

    public func job(_ id: Int64) async throws -> JobRecord? {
        try await database.read { [self] in try memoized(id, $0) }
    }

    /// The newest jobs first.
    public func jobs(limit: Int) async throws -> [JobRecord] {
        try await database.read { [self] connection in
            try Self.revisions(limit: limit, connection).compactMap {
                try memoized($0.id, revision: $0.revision, connection)
            }
        }
    }

    /// The revision of a job's row, nil when there is no such job: what a
    /// reader compares with the revision of what it made from the job before.
    public func revision(of id: Int64) async throws -> Int64? {
        try await database.read { try Self.revision(of: id, $0) }
    }

    /// The ids and revisions of the newest jobs, newest first: equal lists
    /// mean that ``jobs(limit:)`` answers the same records.
    public func revisions(limit: Int) async throws -> [(id: Int64, revision: Int64)] {
        try await database.read { try Self.revisions(limit: limit, $0) }
    }

    private static func revision(of id: Int64, _ connection: SQLiteDatabase.Connection) throws -> Int64? {
        try connection.query("SELECT revision FROM jobs WHERE id = ?", [.integer(id)]).first.map { $0[0].int64 ?? 0 }
    }

    private static func revisions(
        limit: Int, _ connection: SQLiteDatabase.Connection
    ) throws -> [(id: Int64, revision: Int64)] {
        try connection.query("SELECT id, revision FROM jobs ORDER BY id DESC LIMIT ?", [.integer(Int64(limit))])
            .map { ($0[0].int64 ?? 0, $0[1].int64 ?? 0) }
    }

    /// The job as decoded before when its revision has not moved since;
    /// otherwise read and decoded again, and kept. Only for reads.
    private func memoized(
        _ id: Int64, revision: Int64? = nil, _ connection: SQLiteDatabase.Connection
    ) throws -> JobRecord? {
        guard let current = try revision ?? Self.revision(of: id, connection) else { return nil }
        let kept = decoded.withLock({ $0[id] })
        if let kept, kept.revision == current { return kept }
        guard let record = try Self.job(id, connection, since: kept) else { return nil }
        keep(record)
        return record
    }

    /// Keeps a committed record for later reads and writes.
    private func keep(_ record: JobRecord) {
        decoded.withLock { memo in
            if memo.count >= Self.decodedLimit, memo[record.id] == nil { memo.removeAll(keepingCapacity: true) }
            memo[record.id] = record
        }
    }

    /// Events after `sequence`, oldest first, at most `limit`.
    public func events(of id: Int64, after sequence: Int, limit: Int) async throws -> [JobEvent] {
        try await database.read { try Self.events(of: id, after: sequence, limit: limit, $0) }
    }

    /// A job and its events after `sequence` (at most `limit`), read together
    /// so that the record's event count and the events agree: read apart, an
    /// append between the two showed events the count did not hold.
    public struct JobDetail: Sendable {
        public var job: JobRecord
        public var events: [JobEvent]
    }

    public func detail(_ id: Int64, eventsAfter sequence: Int, limit: Int) async throws -> JobDetail? {
        try await database.read { [self] connection in
            guard let job = try memoized(id, connection) else { return nil }
            return JobDetail(job: job, events: try Self.events(of: id, after: sequence, limit: limit, connection))
        }
    }

    private static func events(
        of id: Int64, after sequence: Int, limit: Int, _ connection: SQLiteDatabase.Connection
    ) throws -> [JobEvent] {
        try connection.query(
            "SELECT seq, time, kind, stage, node, message, deadline FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            [.integer(id), .integer(Int64(sequence)), .integer(Int64(limit))]
        ).map { row in
            JobEvent(
                sequence: Int(row[0].int64 ?? 0), time: row[1].double ?? 0,
                kind: JobEvent.Kind(rawValue: row[2].string ?? "") ?? .info,
                stage: row[3].string.flatMap(UpgradeStage.init(rawValue:)), node: row[4].string,
                message: row[5].string ?? "", deadline: row[6].double)
        }
    }

    /// The job holding the one-job slot (queued, running or aborting), if any.
    public func activeJob() async throws -> JobRecord? {
        try await database.read { try Self.active($0) }
    }

    /// The oldest queued job.
    public func nextQueued() async throws -> JobRecord? {
        try await database.read { connection in
            try connection.query("SELECT \(Self.columns) FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1")
                .first.map { try Self.record($0, connection) }
        }
    }

    /// When the newest job that changed the cluster for good (succeeded, not
    /// a dry run) finished; nil when none has.
    public func lastSuccess() async throws -> Double? {
        try await database.read { connection in
            try connection.query(
                "SELECT MAX(finished_at) FROM jobs WHERE state = 'succeeded' AND json_extract(request, '$.dry_run') = 0"
            ).first?[0].double
        }
    }

    /// The result of the newest upgrade that changed the cluster and
    /// succeeded (not a dry run, not a rollback): the timings a forecast
    /// starts from. Nil when there is none.
    public func lastUpgradeResult() async throws -> (id: Int64, result: JSONValue)? {
        let id = try await database.read { connection in
            try connection.query(
                """
                SELECT id FROM jobs WHERE state = 'succeeded' AND json_extract(request, '$.dry_run') = 0
                AND json_extract(request, '$.rollback') IS NULL ORDER BY finished_at DESC LIMIT 1
                """
            ).first?[0].int64
        }
        guard let id, let result = try await job(id)?.result else { return nil }
        return (id, result)
    }

    /// How many jobs are in each state.
    public func countsByState() async throws -> [JobState: Int] {
        try await database.read { connection in
            var counts: [JobState: Int] = [:]
            for row in try connection.query("SELECT state, COUNT(*) FROM jobs GROUP BY state") {
                if let state = row[0].string.flatMap(JobState.init(rawValue:)) {
                    counts[state] = Int(row[1].int64 ?? 0)
                }
            }
            return counts
        }
    }

    // MARK: - Changes

    /// Creates a queued job, unless another job holds the slot; the check
    /// and the insert are one transaction.
    public func create(_ request: ExecuteRequest, at time: Double) async throws -> Result<JobRecord, ActiveJobConflict>
    {
        try await write { connection in
            if let active = try Self.active(connection) { return .failure(ActiveJobConflict(active: active)) }
            let body = String(decoding: request.jsonBody(), as: UTF8.self)
            try connection.execute(
                "INSERT INTO jobs (request, state, created_at, updated_at, progress, revision) VALUES (?, 'queued', ?, ?, ?, 1)",
                [.text(body), .real(time), .real(time), .text(try Self.encode(JobProgress()))])
            let id = connection.lastInsertRowID
            let summary =
                "\(request.title)\(request.dryRun ? " (dry run)" : ""), stages: \(request.stages)"
            let event = JobEvent(time: time, kind: .jobQueued, message: "queued: \(summary)")
            return .success(try Self.append(id, [event], state: nil, result: nil, connection))
        }
    }

    /// Re-creates a job this store does not know, under its own id, from
    /// what the cluster remembers of it (``InFlightMark``), as `interrupted`
    /// so that it can be resumed; its events start with `note`. Nil when
    /// the store already has a job with that id, or holds an active job.
    public func adopt(_ id: Int64, request: ExecuteRequest, at time: Double, note: String) async throws -> JobRecord? {
        try await write { connection in
            guard try Self.job(id, connection) == nil, try Self.active(connection) == nil else { return nil }
            let body = String(decoding: request.jsonBody(), as: UTF8.self)
            try connection.execute(
                "INSERT INTO jobs (id, request, state, created_at, updated_at, progress, revision) VALUES (?, ?, 'interrupted', ?, ?, ?, 1)",
                [.integer(id), .text(body), .real(time), .real(time), .text(try Self.encode(JobProgress()))])
            let events = [
                JobEvent(time: time, kind: .warning, message: note),
                JobEvent(time: time, kind: .jobInterrupted, message: "the service restarted without this job's record"),
            ]
            return try Self.append(id, events, state: .interrupted, result: nil, connection)
        }
    }

    /// Appends events in order and, when given, sets the state and the
    /// result, in one transaction. Returns the job as committed.
    @discardableResult
    public func append(
        _ id: Int64, _ events: [JobEvent], state: JobState? = nil, result: JSONValue? = nil
    ) async throws -> JobRecord {
        let kept = decoded.withLock { $0[id] }
        let record = try await write { try Self.append(id, events, state: state, result: result, kept: kept, $0) }
        keep(record)
        return record
    }

    /// Moves the job to `state` with `event`, only if it is in one of
    /// `allowed`; otherwise nothing changes. Returns the job either way,
    /// and whether it moved.
    public func transition(
        _ id: Int64, from allowed: Set<JobState>, to state: JobState, event: JobEvent,
        requireFreeSlot: Bool = false
    ) async throws -> (record: JobRecord?, moved: Bool, conflict: JobRecord?) {
        let kept = decoded.withLock { $0[id] }
        let outcome: (record: JobRecord?, moved: Bool, conflict: JobRecord?) = try await write { connection in
            guard let current = try Self.current(id, kept: kept, connection) else { return (nil, false, nil) }
            guard allowed.contains(current.state) else { return (current, false, nil) }
            if requireFreeSlot, let active = try Self.active(connection), active.id != id {
                return (current, false, active)
            }
            return (try Self.append(id, [event], state: state, result: nil, kept: current, connection), true, nil)
        }
        if outcome.moved, let record = outcome.record { keep(record) }
        return outcome
    }

    /// At start: jobs left `running` or `aborting` by a process that died
    /// become `interrupted`, each with an event saying so.
    public func markInterrupted(at time: Double) async throws -> [Int64] {
        try await write { connection in
            let rows = try connection.query("SELECT id, state FROM jobs WHERE state IN ('running', 'aborting')")
            var ids: [Int64] = []
            for row in rows {
                guard let id = row[0].int64 else { continue }
                let event = JobEvent(
                    time: time, kind: .jobInterrupted,
                    message:
                        "the service stopped while the job was \(row[1].string ?? "running"); resume it to continue")
                _ = try Self.append(id, [event], state: .interrupted, result: nil, connection)
                ids.append(id)
            }
            return ids
        }
    }

    /// One write transaction, then the signal to whoever follows the jobs.
    private func write<T: Sendable>(
        _ body: @escaping @Sendable (SQLiteDatabase.Connection) throws -> T
    ) async throws -> T {
        defer { changes.signal() }
        return try await database.write(body)
    }

    // MARK: - Inside a transaction

    private static let columns =
        "id, request, state, created_at, started_at, finished_at, updated_at, progress, result, event_count, revision"

    /// The job read and decoded; with `earlier`, a record of it read
    /// before, only the nodes written since are read again.
    private static func job(
        _ id: Int64, _ connection: SQLiteDatabase.Connection, since earlier: JobRecord? = nil
    ) throws -> JobRecord? {
        try connection.query("SELECT \(columns) FROM jobs WHERE id = ?", [.integer(id)]).first.map {
            try record($0, connection, since: earlier)
        }
    }

    /// The job as this transaction sees it: `kept` while the row's revision
    /// is still its own, else read and decoded.
    private static func current(
        _ id: Int64, kept: JobRecord?, _ connection: SQLiteDatabase.Connection
    ) throws -> JobRecord? {
        if let kept, kept.id == id, try revision(of: id, connection) == kept.revision { return kept }
        return try job(id, connection, since: kept)
    }

    private static func active(_ connection: SQLiteDatabase.Connection) throws -> JobRecord? {
        try connection.query(
            "SELECT \(columns) FROM jobs WHERE state IN ('queued', 'running', 'aborting') ORDER BY id LIMIT 1"
        ).first.map { try record($0, connection) }
    }

    private static func append(
        _ id: Int64, _ events: [JobEvent], state: JobState?, result: JSONValue?, kept: JobRecord? = nil,
        _ connection: SQLiteDatabase.Connection
    ) throws -> JobRecord {
        guard var record = try current(id, kept: kept, connection) else {
            throw JobStoreError("job \(id) does not exist")
        }
        let changedAt = events.first?.time ?? record.updatedAt
        let before = record.progress
        for var event in events {
            record.eventCount += 1
            event.sequence = record.eventCount
            try connection.execute(
                "INSERT INTO events (job_id, seq, time, kind, stage, node, message, deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    .integer(id), .integer(Int64(event.sequence)), .real(event.time), .text(event.kind.rawValue),
                    event.stage.map { .text($0.rawValue) } ?? .null, event.node.map { .text($0) } ?? .null,
                    .text(event.message), event.deadline.map { .real($0) } ?? .null,
                ])
            record.progress.apply(event)
            record.updatedAt = event.time
        }
        if let state {
            record.state = state
            if state == .running { record.startedAt = record.startedAt ?? changedAt }
            record.finishedAt = state.isFinished ? changedAt : nil
        }
        if let result { record.result = result }
        record.revision += 1
        // Each node's progress has a row of its own, written when that node
        // moved; the job's progress document holds the rest, and is written
        // again only when something in it moved but the last event folded
        // in (the row's event count): a node script's output line, the
        // commonest event, writes neither. Writing the whole progress, which
        // grows with the nodes, for every event made a job's store work
        // grow with nodes times events.
        if events.contains(where: { JobProgress.changesNodes($0.kind) }) {
            try writeNodes(id, from: before.nodes, to: record.progress.nodes, revision: record.revision, connection)
        }
        var unchanged = record.progress
        unchanged.lastSequence = before.lastSequence
        unchanged.nodes = before.nodes
        var document = record.progress
        document.nodes = []
        let progress: SQLiteValue = unchanged == before ? .null : .text(try encode(document))
        try connection.execute(
            """
            UPDATE jobs SET state = ?, started_at = ?, finished_at = ?, updated_at = ?,
            progress = coalesce(?, progress), result = ?, event_count = ?, revision = revision + 1 WHERE id = ?
            """,
            [
                .text(record.state.rawValue), record.startedAt.map { .real($0) } ?? .null,
                record.finishedAt.map { .real($0) } ?? .null, .real(record.updatedAt), progress,
                record.result.map { .text($0.jsonText) } ?? .null, .integer(Int64(record.eventCount)), .integer(id),
            ])
        return record
    }

    /// Writes the rows of the nodes whose progress differs between `old`
    /// and `new`, marked with the job's new `revision` (nodes are only ever
    /// added at the end or changed in place: ``JobProgress/apply(_:)``).
    private static func writeNodes(
        _ id: Int64, from old: [JobProgress.NodeProgress], to new: [JobProgress.NodeProgress], revision: Int64,
        _ connection: SQLiteDatabase.Connection
    ) throws {
        for index in new.indices where index >= old.count || old[index] != new[index] {
            try connection.execute(
                "INSERT OR REPLACE INTO job_nodes (job_id, idx, progress, revision) VALUES (?, ?, ?, ?)",
                [.integer(id), .integer(Int64(index)), .text(try encode(new[index])), .integer(revision)])
        }
    }

    /// The job's nodes: those of `earlier` (a record of the job read before)
    /// with the rows written since put in, or all of them without one.
    private static func nodes(
        of id: Int64, since earlier: JobRecord?, _ connection: SQLiteDatabase.Connection
    ) throws -> [JobProgress.NodeProgress] {
        var nodes = earlier?.id == id ? earlier?.progress.nodes ?? [] : []
        let after = earlier?.id == id ? earlier?.revision ?? 0 : 0
        let rows = try connection.query(
            "SELECT idx, progress FROM job_nodes WHERE job_id = ? AND revision > ? ORDER BY idx",
            [.integer(id), .integer(after)])
        for row in rows {
            let index = Int(row[0].int64 ?? 0)
            let node = try JSONDecoder().decode(JobProgress.NodeProgress.self, from: Data((row[1].string ?? "{}").utf8))
            if index < nodes.count {
                nodes[index] = node
            } else if index == nodes.count {
                nodes.append(node)
            } else {
                return try Self.nodes(of: id, since: nil, connection)  // a gap: read them all
            }
        }
        return nodes
    }

    private static func record(
        _ row: SQLiteRow, _ connection: SQLiteDatabase.Connection, since earlier: JobRecord? = nil
    ) throws -> JobRecord {
        let id = row[0].int64 ?? 0
        guard let requestText = row[1].string, let request = try? ExecuteRequest(json: Data(requestText.utf8))
        else {
            throw JobStoreError("job \(id): stored request cannot be read")
        }
        guard let state = row[2].string.flatMap(JobState.init(rawValue:)) else {
            throw JobStoreError("job \(id): unknown state \(row[2])")
        }
        var progress = try JSONDecoder().decode(JobProgress.self, from: Data((row[7].string ?? "{}").utf8))
        // The stored progress is not written again for an event that changes
        // nothing else in it (``append``): every event is folded in.
        progress.lastSequence = max(progress.lastSequence, Int(row[9].int64 ?? 0))
        progress.nodes = try nodes(of: id, since: earlier, connection)
        let result = try row[8].string.map { try JSONValue(parsing: $0.utf8) }
        return JobRecord(
            id: id, request: request, state: state, createdAt: row[3].double ?? 0, startedAt: row[4].double,
            finishedAt: row[5].double, updatedAt: row[6].double ?? 0, progress: progress, result: result,
            eventCount: Int(row[9].int64 ?? 0), revision: row[10].int64 ?? 0)
    }

    private static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }
}

public struct JobStoreError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
