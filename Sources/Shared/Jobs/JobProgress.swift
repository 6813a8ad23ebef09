/// What a job's events add up to: each stage's and node's status and times,
/// the current stage, node and wait, and the last error. A pure fold over
/// the events, applied one event at a time as they are written, so the job
/// view never has to replay the history.
public struct JobProgress: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        case pending
        case running
        case succeeded
        case skipped
        case failed
        case aborted
        case interrupted
        case notSelected = "not_selected"
    }

    public struct StageProgress: Sendable, Equatable, Codable, TimedProgress {
        public var stage: UpgradeStage
        public var status: Status = .pending
        public var startedAt: Double?
        public var finishedAt: Double?
        /// Why it was skipped, or how it failed.
        public var detail: String?
    }

    public struct NodeProgress: Sendable, Equatable, Codable, TimedProgress {
        public var name: String
        public var stage: UpgradeStage?
        public var status: Status = .running
        public var startedAt: Double?
        public var finishedAt: Double?
        public var detail: String?
    }

    public struct Wait: Sendable, Equatable, Codable {
        /// What is awaited, e.g. "halt-on-alert gate clear".
        public var what: String
        /// Why it is not over yet, e.g. "firing: NodeDown".
        public var reason: String
        public var since: Double
        public var deadline: Double?
        public var stage: UpgradeStage?
        public var node: String?
    }

    public var stages: [StageProgress] = UpgradeStage.allCases.map { StageProgress(stage: $0) }
    public var nodes: [NodeProgress] = []
    public var currentStage: UpgradeStage?
    public var currentNode: String?
    public var wait: Wait?
    public var lastError: String?
    /// The highest event number folded in.
    public var lastSequence = 0

    public init() {}

    /// The progress after `event`.
    public func applying(_ event: JobEvent) -> JobProgress {
        var next = self
        next.apply(event)
        return next
    }

    /// Folds `event` in.
    public mutating func apply(_ event: JobEvent) {
        lastSequence = max(lastSequence, event.sequence)
        switch event.kind {
        case .jobResumed:
            // A resumed job runs its stages again from live state: open ones start over.
            for index in stages.indices
            where [.running, .failed, .aborted, .interrupted].contains(stages[index].status) {
                stages[index].status = .pending
            }
            for index in nodes.indices where [.running, .failed, .aborted, .interrupted].contains(nodes[index].status) {
                nodes[index].status = .pending
            }
            lastError = nil
            wait = nil
        case .stageStarted:
            updateStage(event.stage) {
                $0.status = .running
                $0.startedAt = event.time
                $0.finishedAt = nil
                $0.detail = nil
            }
            currentStage = event.stage
            currentNode = nil
        case .stageSucceeded: finishStage(event, .succeeded)
        case .stageSkipped: finishStage(event, .skipped, detail: event.message)
        case .stageNotSelected: updateStage(event.stage) { $0.status = .notSelected }
        case .stageFailed:
            finishStage(event, .failed, detail: event.message)
            lastError = event.message
        case .nodeStarted:
            guard let name = event.node else { return }
            if let index = nodes.firstIndex(where: { $0.name == name && $0.stage == event.stage }) {
                nodes[index].status = .running
                nodes[index].startedAt = event.time
                nodes[index].finishedAt = nil
                nodes[index].detail = nil
            } else {
                nodes.append(NodeProgress(name: name, stage: event.stage, status: .running, startedAt: event.time))
            }
            currentNode = name
        case .nodeSucceeded: finishNode(event, .succeeded)
        case .nodeSkipped: finishNode(event, .skipped, detail: event.message)
        case .nodeFailed:
            finishNode(event, .failed, detail: event.message)
            lastError = event.message
        case .waitStarted:
            if let stage = event.stage { currentStage = stage }
            if let node = event.node { currentNode = node }
            wait = Wait(
                what: event.message, reason: "", since: event.time, deadline: event.deadline, stage: event.stage,
                node: event.node)
        case .waitUpdated: wait?.reason = event.message
        case .waitEnded: wait = nil
        case .jobFailed:
            lastError = event.message
            closeOpenWork(event, .failed)
        case .jobAborted: closeOpenWork(event, .aborted)
        case .jobInterrupted: closeOpenWork(event, .interrupted)
        case .jobSucceeded:
            currentStage = nil
            currentNode = nil
            wait = nil
        case .jobQueued, .jobStarted, .abortRequested, .wouldChange, .output, .info, .warning: break
        }
    }

    /// Whether folding an event of `kind` in can change a node's progress
    /// (``apply(_:)``): a store writes the nodes' progress only then.
    public static func changesNodes(_ kind: JobEvent.Kind) -> Bool {
        switch kind {
        case .nodeStarted, .nodeSucceeded, .nodeSkipped, .nodeFailed, .jobResumed, .jobFailed, .jobAborted,
            .jobInterrupted:
            true
        case .jobQueued, .jobStarted, .jobSucceeded, .abortRequested, .stageStarted, .stageSucceeded, .stageSkipped,
            .stageNotSelected, .stageFailed, .waitStarted, .waitUpdated, .waitEnded, .wouldChange, .output, .info,
            .warning:
            false
        }
    }

    private mutating func updateStage(_ stage: UpgradeStage?, _ change: (inout StageProgress) -> Void) {
        guard let stage, let index = stages.firstIndex(where: { $0.stage == stage }) else { return }
        change(&stages[index])
    }

    private mutating func finishStage(_ event: JobEvent, _ status: Status, detail: String? = nil) {
        updateStage(event.stage) {
            $0.status = status
            $0.startedAt = $0.startedAt ?? event.time
            $0.finishedAt = event.time
            $0.detail = detail
        }
        currentNode = nil
        wait = nil
    }

    private mutating func finishNode(_ event: JobEvent, _ status: Status, detail: String? = nil) {
        guard let name = event.node else { return }
        let index =
            nodes.firstIndex(where: { $0.name == name && $0.stage == event.stage })
            ?? {
                nodes.append(NodeProgress(name: name, stage: event.stage, startedAt: event.time))
                return nodes.count - 1
            }()
        nodes[index].status = status
        nodes[index].finishedAt = event.time
        nodes[index].detail = detail
        if currentNode == name { currentNode = nil }
        wait = nil
    }

    /// A job that ended closes its running stage and node with the same word.
    private mutating func closeOpenWork(_ event: JobEvent, _ status: Status) {
        for index in stages.indices where stages[index].status == .running {
            stages[index].status = status
            stages[index].finishedAt = event.time
            stages[index].detail = stages[index].detail ?? event.message
        }
        for index in nodes.indices where nodes[index].status == .running {
            nodes[index].status = status
            nodes[index].finishedAt = event.time
        }
        wait = nil
    }
}

/// A stage or a node: started and finished times, and the time in between.
public protocol TimedProgress {
    var startedAt: Double? { get }
    var finishedAt: Double? { get }
}

extension TimedProgress {
    /// Seconds from start to finish, once finished.
    public var durationSeconds: Double? {
        guard let startedAt, let finishedAt else { return nil }
        return finishedAt - startedAt
    }
}
