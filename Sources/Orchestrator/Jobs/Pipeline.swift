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
    func run(_ stage: UpgradeStage, job: JobContext) async throws -> StageOutcome
}

/// Gates between stages, on Prometheus' alerts: a stage starts only while
/// no alert matching the selector fires, waiting at most `gateWait`.
struct GateCheck: Sendable {
    let prometheus: Prometheus
    let selector: GateSelector
    let gateWait: Duration

    func waitUntilOpen(_ job: JobContext, stage: UpgradeStage, node: String? = nil) async throws {
        let what = "halt-on-alert gate (\(selector)) to open"
        try await job.wait(for: what, stage: stage, node: node, timeout: gateWait) {
            let verdict = await prometheus.gate(selector)
            return verdict == .open ? nil : verdict.summary
        }
    }
}

/// The pipeline of this build: gates between stages are real; the stage
/// bodies (snapshot, drain, node script, soak) are not in this build yet,
/// and each says so in the job's events rather than pretending to work.
struct GatedPipeline: Pipeline {
    let gate: GateCheck

    func beforeStage(_ stage: UpgradeStage, job: JobContext) async throws {
        try await gate.waitUntilOpen(job, stage: stage)
    }

    func run(_ stage: UpgradeStage, job: JobContext) async throws -> StageOutcome {
        .skipped("the \(stage.rawValue) stage's work is not part of this build; nothing was changed")
    }
}
