import Shared
import SharedIO

/// What a stage body reports when it returns normally.
enum StageOutcome: Equatable {
    /// The stage did its work; the text says what.
    case done(String)
    /// Its precondition already held or it does not apply; the text says why.
    case skipped(String)
}

/// The work of each stage. The runner calls `beforeStage` then `run` for
/// every selected stage in order; a thrown error fails the job at that
/// stage, a ``JobStop`` stops it at a safe point.
protocol Pipeline: Sendable {
    /// Runs before every stage: the halt-on-alert gate.
    func beforeStage(_ stage: UpgradeStage, job: JobContext) async throws
    /// Stage 0, once, after the first selected stage's gate: plan and mark in flight.
    func begin(job: JobContext) async throws
    func run(_ stage: UpgradeStage, job: JobContext) async throws -> StageOutcome
    /// The job ended in `state` (`reason` for a failure or an abort); the
    /// answer becomes the job's result.
    func end(job: JobContext, state: JobState, reason: String?) async -> JSONValue?
}

/// What the halt-on-alert gate reads: the verdict now, and the alerts that
/// fired in a window (for the quiet period). Prometheus in the service; a
/// stand-in in the in-process tests.
protocol AlertSource: Sendable {
    func gate(_ selector: GateSelector) async -> GateVerdict
    /// The label sets of an instant query's vector at `time` (seconds since 1970).
    func query(_ expression: String, at time: Double?) async throws -> [[String: String]]
}

extension Prometheus: AlertSource {}

/// Gates between stages, on Prometheus' alerts: a stage starts only while
/// no alert matching the selector fires, waiting at most `gateWait`.
struct GateCheck: Sendable {
    let alerts: any AlertSource
    let selector: GateSelector
    let gateWait: Duration

    /// The verdict now.
    func verdict() async -> GateVerdict { await alerts.gate(selector) }

    func waitUntilOpen(_ job: JobContext, stage: UpgradeStage, node: String? = nil) async throws {
        let what = "halt-on-alert gate (\(selector)) to open"
        try await job.wait(for: what, stage: stage, node: node, timeout: gateWait) {
            let verdict = await verdict()
            return verdict == .open ? nil : verdict.summary
        }
    }
}
