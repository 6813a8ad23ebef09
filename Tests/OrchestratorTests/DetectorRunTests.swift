import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Shared
import SharedIO
import Synchronization
import TestSupport
import Testing

@testable import ClusterSim
@testable import Detector

/// The detector's settings and its run in-process: the cluster from the
/// API simulator's store on loopback, the package repository from a
/// loopback router, the master's `apt-cache madison` from a stand-in.
@Suite struct DetectorRunTests {
    /// `apt-cache madison kubeadm` as the master answers it.
    final class Madison: MasterShell {
        let versions: [String]
        let asked = Mutex<[String]>([])

        init(versions: [String]) { self.versions = versions }

        func run(
            _ command: String, at endpoint: (host: String, port: Int), node: String, settings: Settings
        ) async throws -> SSHCommandResult {
            asked.withLock { $0.append("\(node) \(endpoint.host):\(endpoint.port): \(command)") }
            let lines = versions.map {
                "   kubeadm | \($0)-1.1 | https://pkgs.k8s.io/core:/stable:/v1.34/deb  Packages"
            }
            return SSHCommandResult(
                exitStatus: 0, exitSignal: nil, stdout: Data((lines.joined(separator: "\n") + "\n").utf8),
                stderr: Data())
        }
    }

    static let cluster = """
        {"nodes":[{"name":"master","roles":["control-plane"],"kubeletVersion":"1.34.3","internalIP":"10.0.0.10"},
                  {"name":"worker-1","kubeletVersion":"1.34.3"}]}
        """

    /// Runs the detector with `arguments` over the simulated cluster and a
    /// repository where `nextMinor` (a Packages index body) is published,
    /// or not when nil; the summary line and the exit.
    static func detect(
        _ arguments: [String], madison: Madison, nextMinor: String?, environment: [String: String] = [:]
    ) async throws -> (summary: String, exit: DetectorExit) {
        let store = await ClusterStore(scenario: try JSONDecoder().decode(Scenario.self, from: Data(cluster.utf8)))
        let token = "detector-test"
        let handler = ClusterSim.APIHandler(store: store, token: token, faults: Scenario.Faults())
        let api = Application(
            responder: CallbackResponder { request, context in await handler.respond(to: request, context: context) },
            configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: .silent)
        let repository = Router()
        repository.on("/core:/stable:/v1.35/deb/Release", method: .head) { _, _ in
            nextMinor == nil ? Response(status: .notFound) : Response(status: .ok)
        }
        repository.get("/core:/stable:/v1.35/deb/Packages") { _, _ in nextMinor ?? "" }
        let repo = Application(
            router: repository, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: .silent)
        return try await api.test(.live) { apiClient in
            try await repo.test(.live) { repoClient in
                let folder = try TestEnvironment.makeDirectory("detector-run")
                let kubeconfig = folder.appendingPathComponent("kubeconfig")
                try """
                apiVersion: v1
                kind: Config
                clusters: [{name: sim, cluster: {server: "http://127.0.0.1:\(apiClient.port ?? 0)"}}]
                users: [{name: u, user: {token: \(token)}}]
                contexts: [{name: sim, context: {cluster: sim, user: u}}]
                current-context: sim

                """.write(to: kubeconfig, atomically: true, encoding: .utf8)
                let options = try VersionCheck.parse(
                    [
                        "--kubeconfig", kubeconfig.path, "--repo-base",
                        "http://127.0.0.1:\(repoClient.port ?? 0)/core:/stable:",
                    ]
                        + arguments)
                var run = Run(
                    settings: try Settings(options, environment: environment), log: .silent)
                run.master = madison
                let lines = Mutex<[String]>([])
                run.report = { line in lines.withLock { $0.append(line) } }
                let exit = await run.execute()
                return (lines.withLock { $0 }.joined(separator: "\n"), exit)
            }
        }
    }

    @Test func aNewerPatchIsDueAndTheMasterIsAskedAtItsInternalIP() async throws {
        let madison = Madison(versions: ["1.34.5", "1.34.4", "1.34.3"])
        let (summary, exit) = try await Self.detect([], madison: madison, nextMinor: nil)
        #expect(exit == .ok)
        #expect(summary.hasSuffix("patch → 1.34.5 due, no orchestrator configured"), "\(summary)")
        #expect(madison.asked.withLock { $0 } == ["master 10.0.0.10:22: apt-cache madison kubeadm"])
    }

    @Test func aPublishedMinorIsTakenOnlyWhenAllowed() async throws {
        let index = "Package: kubeadm\nVersion: 1.35.0-1.1\n\nPackage: kubeadm\nVersion: 1.35.2-1.1\n"
        let madison = Madison(versions: ["1.34.3"])
        let refused = try await Self.detect([], madison: madison, nextMinor: index)
        #expect(refused.summary.contains("nothing to do"), "\(refused.summary)")
        let allowed = try await Self.detect(
            [], madison: madison, nextMinor: index, environment: ["K8SUP_ALLOW_MINOR": "true"])
        #expect(allowed.summary.hasSuffix("minor → 1.35.2 due, no orchestrator configured"), "\(allowed.summary)")
    }

    /// With maintenance windows, the detector dispatches only inside one:
    /// a window 12 h away holds the dispatch and names its opening; one
    /// open now lets it through.
    @Test func theDetectorDispatchesOnlyInsideAMaintenanceWindow() async throws {
        func daily(startingIn minutes: Int, _ length: String) -> [String] {
            let start = (Int(Date().timeIntervalSince1970) / 60 + minutes) % 1440
            let clock = String(format: "%02d:%02d", start / 60, start % 60)
            return ["--maintenance-window", "daily \(clock) \(length) UTC"]
        }
        let madison = Madison(versions: ["1.34.5", "1.34.3"])
        let closed = try await Self.detect(daily(startingIn: 720, "1m"), madison: madison, nextMinor: nil)
        #expect(closed.exit == .ok)
        #expect(
            closed.summary.contains(
                "patch → 1.34.5 not dispatched: outside the maintenance windows (the next opens at "),
            "\(closed.summary)")
        let open = try await Self.detect(daily(startingIn: -10, "1h"), madison: madison, nextMinor: nil)
        #expect(open.summary.hasSuffix("patch → 1.34.5 due, no orchestrator configured"), "\(open.summary)")
        // The decision itself, at fixed times: Friday 2027-01-15 08:00 UTC.
        let window = try MaintenanceWindow.parse("Sat 02:00 4h UTC") { _ in .utc }
        let schedule = MaintenanceSchedule(windows: [window])
        #expect(
            Run.outsideWindows(schedule, now: 1_800_000_000) == "the next opens at Sat 2027-01-16 02:00 UTC")
        #expect(Run.outsideWindows(schedule, now: 1_800_000_000 + 18 * 3600 + 60) == nil)
        #expect(Run.outsideWindows(MaintenanceSchedule(), now: 1_800_000_000) == nil)
    }

    @Test func aMasterWithoutTheRunningMinorFailsDetection() async throws {
        let (summary, exit) = try await Self.detect([], madison: Madison(versions: ["1.35.1"]), nextMinor: nil)
        #expect(exit == .detectionFailed)
        #expect(summary.hasPrefix("detection failed: "), "\(summary)")
    }

    /// Flags win over variables, an empty variable is unset, and every bad
    /// value is refused naming its option, before anything runs.
    @Test(arguments: [
        ([String](), ["K8SUP_SSH_PORT": "2222"], "port 2222"),
        (["--ssh-port", "22"], ["K8SUP_SSH_PORT": "2222"], "port 22"),
        ([], ["K8SUP_SSH_PORT": ""], "port 22"),
        ([], ["K8SUP_SSH_PORT": "0"], "ssh-port must be in 1...65535, got 0"),
        (["--ssh-user", "a b"], [:], "ssh-user a b is not a user name"),
        ([], ["K8SUP_REPO_BASE": "ftp://mirror"], "repo-base must be an http(s) URL, got ftp://mirror"),
        (["--master-address", "10.0.0.1:0"], [:], "master-address"),
    ])
    func settings(arguments: [String], environment: [String: String], expected: String) throws {
        let options = try VersionCheck.parse(arguments)
        do {
            let settings = try Settings(options, environment: environment)
            #expect("port \(settings.sshPort)" == expected)
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }
}
