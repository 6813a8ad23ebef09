import Foundation
import TestSupport
import Testing

extension TestBedSuites {
    /// Every benchmark under scripts/bench/ in its `--smoke` mode (the debug
    /// build, small sizes, seconds): a benchmark that no longer starts, or
    /// whose figures no longer print, fails here instead of rotting.
    @Suite("benchmarks in --smoke mode", .serialized)
    struct BenchmarkSmokeTests {
        static let repository = TestEnvironment.fixtures.deletingLastPathComponent().deletingLastPathComponent()

        /// What each benchmark must print: its figures and its targets.
        static let benchmarks: [(script: String, prints: [String])] = [
            ("orchestrator.sh", ["/jobs/1 saturated", "/jobs paced", "RSS idle", "targets: p99 <= 2 ms"]),
            ("detector.sh", ["k8s-version-check      median", "shell pipeline", "(target <= 0.50)"]),
            ("testbed.sh", ["up:   median", "down: median", "processes left running after down: 0"]),
            ("patch-run.sh", ["default: patch job", "s per node"]),
            ("drain.sh", ["kubectl drain", "k8s-upgrade drain", "(target <= 0.80)", "orchestration overhead"]),
            (
                "scale.sh",
                [
                    "simulator alone", "detector: median", "pre-flight stage", "plan (GET /plan", "peak RSS",
                    "post-flight over 494 pods", "read page by page",
                    "dry run of synthetic-6,  1 worker(s) at a time", "dry run of synthetic-6, 16 worker(s) at a time",
                ]
            ),
            ("rehearsal.sh", ["restore rehearsal (", "    8 MB of values (snapshot ", "etcd peak RSS"]),
            ("followers.sh", ["   1 follower:  job", "   5 followers: job", "complete: 5 of 5", "(target <= 5 ms"]),
        ]

        @Test(arguments: benchmarks.map(\.script))
        func runsAndPrintsItsFiguresAndTargets(_ script: String) async throws {
            let path = Self.repository.appendingPathComponent("scripts/bench/\(script)").path
            let result = try await offThePool {
                try TestEnvironment.execute(
                    "/usr/bin/env",
                    ["K8SUP_BENCH_BIN=\(TestEnvironment.productsDirectory.path)", path, "--smoke"])
            }
            #expect(result.status == 0, "\(script) --smoke: \(result.stderr)")
            for text in Self.benchmarks.first(where: { $0.script == script })?.prints ?? [] {
                #expect(result.stdout.contains(text), "\(script) --smoke printed no \"\(text)\":\n\(result.stdout)")
            }
        }
    }
}
