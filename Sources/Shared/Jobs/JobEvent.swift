/// One entry of a job's history. Events are numbered from 1 in the order
/// they happened and never change once written.
public struct JobEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case jobQueued = "job_queued"
        case jobStarted = "job_started"
        case jobResumed = "job_resumed"
        case jobSucceeded = "job_succeeded"
        case jobFailed = "job_failed"
        case abortRequested = "abort_requested"
        case jobAborted = "job_aborted"
        case jobInterrupted = "job_interrupted"
        case stageStarted = "stage_started"
        case stageSucceeded = "stage_succeeded"
        case stageSkipped = "stage_skipped"
        case stageNotSelected = "stage_not_selected"
        case stageFailed = "stage_failed"
        case nodeStarted = "node_started"
        case nodeSucceeded = "node_succeeded"
        case nodeSkipped = "node_skipped"
        case nodeFailed = "node_failed"
        case waitStarted = "wait_started"
        case waitUpdated = "wait_updated"
        case waitEnded = "wait_ended"
        /// A write a dry run would have made.
        case wouldChange = "would_change"
        /// A line of output of a remote command.
        case output
        case info
        case warning
    }

    /// 1, 2, 3, … within the job.
    public var sequence: Int
    /// Seconds since 1970.
    public var time: Double
    public var kind: Kind
    public var stage: UpgradeStage?
    public var node: String?
    public var message: String
    /// For `wait_started`: when the wait gives up, seconds since 1970.
    public var deadline: Double?

    public init(
        sequence: Int = 0, time: Double, kind: Kind, stage: UpgradeStage? = nil, node: String? = nil,
        message: String, deadline: Double? = nil
    ) {
        self.sequence = sequence
        self.time = time
        self.kind = kind
        self.stage = stage
        self.node = node
        self.message = message
        self.deadline = deadline
    }
}
