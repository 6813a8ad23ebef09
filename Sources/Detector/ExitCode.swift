/// The detector's exit codes, in one place; `--help` and the runbook list them.
enum DetectorExit: Int32 {
    /// Nothing to do, dispatched, a job already in flight (409), cluster mid-upgrade, or detect-only.
    case ok = 0
    /// Detection failed (cluster, master over SSH, madison output, repository); nothing was dispatched.
    case detectionFailed = 1
    /// Decided (and dispatched if due), but the Pushgateway push failed.
    case metricsFailed = 2
    /// The orchestrator refused the dispatch or could not be reached.
    case dispatchFailed = 3
    /// Bad options (ArgumentParser's usage exit).
    case usage = 64

    static let help = """
        Exit codes: 0 nothing to do, dispatched, a job already in flight (409), cluster mid-upgrade, or \
        --detect-only; 1 detection failed, nothing dispatched; 2 metrics push failed; \
        3 the orchestrator refused the dispatch or was unreachable; 64 bad options.
        """
}
