/// Where a job is in its life.
///
/// `queued → running → succeeded | failed | aborted`; `aborting` between an
/// abort request and the next safe point; `interrupted` when the service
/// stopped or died while the job ran. `failed`, `aborted` and `interrupted`
/// jobs can be resumed, which queues them again.
public enum JobState: String, Sendable, Codable, CaseIterable {
    case queued
    case running
    case aborting
    case succeeded
    case failed
    case aborted
    case interrupted

    /// Holds the one-job-at-a-time slot.
    public var isActive: Bool { self == .queued || self == .running || self == .aborting }

    /// Nothing more will happen unless someone resumes it.
    public var isFinished: Bool { !isActive }

    /// A resume request is accepted.
    public var isResumable: Bool { self == .failed || self == .aborted || self == .interrupted }
}

/// What an abort request does to a job in a given state.
public enum AbortDecision: Sendable, Equatable {
    /// Not running (queued, or interrupted and waiting for a resume): aborted
    /// at once, so that an interrupted job is not resumed by itself.
    case abortNow
    /// Running: `aborting`, stopped at the next safe point.
    case stopAtSafePoint
    /// Already aborting: nothing more to do (a repeated DELETE is harmless).
    case alreadyAborting
    /// Finished: refused.
    case refuse

    public init(state: JobState) {
        switch state {
        case .queued, .interrupted: self = .abortNow
        case .running: self = .stopAtSafePoint
        case .aborting: self = .alreadyAborting
        case .succeeded, .failed, .aborted: self = .refuse
        }
    }
}
