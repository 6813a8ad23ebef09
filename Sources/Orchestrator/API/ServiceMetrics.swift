import Glibc
import Shared
import SharedIO
import Synchronization

/// The service's own metrics, in the Prometheus text format at `/metrics`.
final class ServiceMetrics: Sendable {
    private let requests = Mutex<[String: Int]>([:])
    private let startTime: Double
    private let gauges: GaugePublisher?

    init(startTime: Double, gauges: GaugePublisher? = nil) {
        self.startTime = startTime
        self.gauges = gauges
    }

    /// Counts one answered request under its route template and status code.
    func count(method: String, route: String, status: Int) {
        let key = "method=\"\(method)\",route=\"\(route)\",code=\"\(status)\""
        requests.withLock { $0[key, default: 0] += 1 }
    }

    func exposition(jobs: [JobState: Int], active: JobRecord?) -> String {
        var lines: [String] = []
        lines.append("# HELP k8s_upgrade_http_requests_total HTTP requests answered, by route and status code.")
        lines.append("# TYPE k8s_upgrade_http_requests_total counter")
        for (labels, value) in requests.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            lines.append("k8s_upgrade_http_requests_total{\(labels)} \(value)")
        }
        lines.append("# HELP k8s_upgrade_jobs Jobs in the store, by state.")
        lines.append("# TYPE k8s_upgrade_jobs gauge")
        for state in JobState.allCases {
            lines.append("k8s_upgrade_jobs{state=\"\(state.rawValue)\"} \(jobs[state] ?? 0)")
        }
        lines.append("# HELP k8s_upgrade_job_active 1 while a job is queued, running or aborting.")
        lines.append("# TYPE k8s_upgrade_job_active gauge")
        lines.append("k8s_upgrade_job_active \(active == nil ? 0 : 1)")
        lines.append("# HELP process_start_time_seconds Start time of the process since the epoch.")
        lines.append("# TYPE process_start_time_seconds gauge")
        lines.append("process_start_time_seconds \(startTime)")
        lines.append("# HELP process_resident_memory_bytes Resident memory size in bytes.")
        lines.append("# TYPE process_resident_memory_bytes gauge")
        lines.append("process_resident_memory_bytes \(Self.residentBytes())")
        return lines.joined(separator: "\n") + "\n" + (gauges?.current.exposition ?? "")
    }

    /// Resident pages from /proc/self/statm times the page size.
    static func residentBytes() -> Int {
        let descriptor = open("/proc/self/statm", O_RDONLY)
        guard descriptor >= 0 else { return 0 }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = read(descriptor, &buffer, buffer.count)
        let fields = String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self).split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
        return pages * sysconf(Int32(_SC_PAGESIZE))
    }
}
