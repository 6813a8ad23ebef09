import FoundationEssentials
import Testing

@testable import Shared

@Suite struct JobProgressTests {
    static func event(
        _ sequence: Int, _ kind: JobEvent.Kind, _ stage: UpgradeStage? = nil, node: String? = nil,
        _ message: String = "", deadline: Double? = nil
    ) -> JobEvent {
        JobEvent(
            sequence: sequence, time: Double(100 + sequence), kind: kind, stage: stage, node: node, message: message,
            deadline: deadline)
    }

    static func fold(_ events: [JobEvent]) -> JobProgress {
        events.reduce(JobProgress()) { $0.applying($1) }
    }

    @Test func stagesAndNodesCarryStatusTimesAndTheCurrentPlace() {
        let progress = Self.fold([
            Self.event(1, .jobQueued), Self.event(2, .jobStarted),
            Self.event(3, .stageStarted, .preflight), Self.event(4, .stageSucceeded, .preflight, "ok"),
            Self.event(5, .stageNotSelected, .snapshot),
            Self.event(6, .stageStarted, .workers), Self.event(7, .nodeStarted, .workers, node: "worker-1"),
            Self.event(9, .nodeSucceeded, .workers, node: "worker-1"),
            Self.event(10, .nodeStarted, .workers, node: "worker-2"),
            Self.event(11, .waitStarted, .workers, node: "worker-2", "gate to open", deadline: 500),
            Self.event(12, .waitUpdated, .workers, node: "worker-2", "firing: NodeDown"),
        ])
        #expect(
            progress.stages.map(\.status) == [
                .succeeded, .notSelected, .pending, .pending, .pending, .running, .pending,
            ])
        #expect(progress.stages[0].durationSeconds == 1)
        #expect(progress.nodes.map(\.name) == ["worker-1", "worker-2"])
        #expect(progress.nodes.map(\.status) == [.succeeded, .running])
        #expect(progress.nodes[0].durationSeconds == 2)
        #expect(progress.currentStage == .workers)
        #expect(progress.currentNode == "worker-2")
        #expect(progress.wait?.what == "gate to open")
        #expect(progress.wait?.reason == "firing: NodeDown")
        #expect(progress.wait?.deadline == 500)
        #expect(progress.lastSequence == 12)
    }

    /// Every kind of event the store does not write node progress for
    /// leaves the nodes as they were, whatever node it names: the store's
    /// shortcut (``JobProgress.changesNodes``) cannot hide a change.
    @Test(arguments: JobEvent.Kind.allCases)
    func aKindThatChangesNoNodeLeavesEveryNodeAsItWas(kind: JobEvent.Kind) {
        var progress = Self.fold([
            Self.event(1, .stageStarted, .workers), Self.event(2, .nodeStarted, .workers, node: "worker-1"),
            Self.event(3, .nodeStarted, .workers, node: "worker-2"),
            Self.event(4, .nodeSucceeded, .workers, node: "worker-2"),
        ])
        progress.apply(Self.event(5, .nodeFailed, .workers, node: "worker-3"))
        let before = progress.nodes
        for node in ["worker-1", "worker-2", "worker-3", "worker-4", nil] {
            let after = progress.applying(Self.event(6, kind, .workers, node: node, "message")).nodes
            if !JobProgress.changesNodes(kind) { #expect(after == before, "\(kind) on \(node ?? "no node")") }
        }
    }

    @Test func aFailureClosesWhatRanAndIsTheLastError() {
        let progress = Self.fold([
            Self.event(1, .stageStarted, .master), Self.event(2, .nodeStarted, .master, node: "cp-1"),
            Self.event(3, .waitStarted, .master, node: "cp-1", "node Ready"),
            Self.event(4, .nodeFailed, .master, node: "cp-1", "cp-1 never turned Ready"),
            Self.event(5, .stageFailed, .master, "cp-1 never turned Ready"),
            Self.event(6, .jobFailed, .master, "cp-1 never turned Ready"),
        ])
        #expect(progress.stages[4].status == .failed)
        #expect(progress.nodes.first?.status == .failed)
        #expect(progress.wait == nil)
        #expect(progress.lastError == "cp-1 never turned Ready")
    }

    @Test(arguments: [
        (JobEvent.Kind.jobAborted, JobProgress.Status.aborted), (.jobInterrupted, .interrupted), (.jobFailed, .failed),
    ])
    func anEndedJobClosesItsRunningStageWithTheSameWord(kind: JobEvent.Kind, status: JobProgress.Status) {
        let progress = Self.fold([
            Self.event(1, .stageStarted, .workers), Self.event(2, .nodeStarted, .workers, node: "w"),
            Self.event(3, .waitStarted, .workers, "soak"), Self.event(4, kind, nil, "stopped"),
        ])
        #expect(progress.stages[5].status == status)
        #expect(progress.nodes[0].status == status)
        #expect(progress.wait == nil)
    }

    @Test func aResumeReopensWhatFailedAndKeepsWhatSucceeded() {
        let progress = Self.fold([
            Self.event(1, .stageStarted, .preflight), Self.event(2, .stageSucceeded, .preflight),
            Self.event(3, .stageStarted, .workers), Self.event(4, .nodeStarted, .workers, node: "w1"),
            Self.event(5, .nodeSucceeded, .workers, node: "w1"), Self.event(6, .nodeStarted, .workers, node: "w2"),
            Self.event(7, .jobInterrupted, nil, "service stopped"), Self.event(8, .jobResumed, nil, "resumed"),
        ])
        #expect(progress.stages[0].status == .succeeded)
        #expect(progress.stages[5].status == .pending)
        #expect(progress.nodes.map(\.status) == [.succeeded, .pending])
        #expect(progress.lastError == nil)
    }

    @Test func progressSurvivesItsStoredForm() throws {
        let progress = Self.fold([Self.event(1, .stageStarted, .snapshot), Self.event(2, .waitStarted, .snapshot, "x")])
        let decoded = try JSONDecoder().decode(JobProgress.self, from: try JSONEncoder().encode(progress))
        #expect(decoded == progress)
    }
}

@Suite struct JobStateTests {
    @Test func theSlotAndWhatAbortAndResumeMayDo() {
        let expected: [JobState: (active: Bool, resumable: Bool, abort: AbortDecision)] = [
            .queued: (true, false, .abortNow), .running: (true, false, .stopAtSafePoint),
            .aborting: (true, false, .alreadyAborting), .succeeded: (false, false, .refuse),
            .failed: (false, true, .refuse), .aborted: (false, true, .refuse), .interrupted: (false, true, .abortNow),
        ]
        for state in JobState.allCases {
            let row = try! #require(expected[state])
            #expect(state.isActive == row.active, "\(state)")
            #expect(state.isResumable == row.resumable, "\(state)")
            #expect(AbortDecision(state: state) == row.abort, "\(state)")
        }
    }
}

@Suite struct GateTests {
    static func alert(
        _ name: String, state: String = "firing", _ labels: [String: String] = ["upgrade_gate": "true"]
    )
        -> Alert
    {
        Alert(labels: labels.merging(["alertname": name]) { a, _ in a }, state: state)
    }

    @Test func onlyFiringMatchingUnignoredAlertsCloseTheGate() throws {
        let selector = try GateSelector(parsing: "upgrade_gate=true")
        let cases: [([Alert], GateVerdict)] = [
            ([], .open),
            ([Self.alert("NodeDown")], .closed(["NodeDown"])),
            ([Self.alert("NodeDown", state: "pending")], .open),
            ([Self.alert("K8sVersionSkew")], .open),
            ([Self.alert("Other", ["severity": "critical"])], .open),
            (
                [Self.alert("B", ["upgrade_gate": "true", "instance": "w1"]), Self.alert("A")],
                .closed(["A", "B (w1)"])
            ),
            ([Self.alert("A"), Self.alert("A")], .closed(["A"])),
        ]
        for (alerts, verdict) in cases {
            #expect(GateVerdict.evaluate(alerts, selector: selector) == verdict, "\(alerts)")
        }
        #expect(GateVerdict.closed(["A", "B"]).summary == "firing: A, B")
    }

    @Test func selectorsReadEqualAndNotEqualTermsAndRefuseTheRest() throws {
        let selector = try GateSelector(parsing: "upgrade_gate=true, severity!=info", ignoring: [])
        #expect(selector.matches(Self.alert("X", ["upgrade_gate": "true", "severity": "critical"])))
        #expect(!selector.matches(Self.alert("X", ["upgrade_gate": "true", "severity": "info"])))
        #expect(selector.matches(Self.alert("K8sVersionSkew")))
        for bad in ["", "upgrade_gate", "1abc=x", "a=\"b\"", " , "] {
            #expect(throws: GateError.self, "\(bad)") { try GateSelector(parsing: bad) }
        }
        #expect(throws: GateError.self) { try GateSelector(parsing: "a=b", ignoring: ["bad name"]) }
    }

    @Test func theQuietPeriodQueryMirrorsTheSelector() throws {
        let selector = try GateSelector(parsing: "upgrade_gate=true,severity!=info")
        #expect(
            selector.quietPeriodQuery(hours: 24)
                == #"max_over_time(ALERTS{alertstate="firing",upgrade_gate="true",severity!="info",alertname!~"K8sVersionSkew"}[24h])"#
        )
    }

    @Test func prometheusAnswersAreReadOrRefused() throws {
        let good = try JSONDecoder().decode(
            JSONValue.self,
            from: Data(
                #"{"status":"success","data":{"alerts":[{"labels":{"alertname":"A","upgrade_gate":"true"},"state":"firing"}]}}"#
                    .utf8))
        #expect(try Alert.parse(alertsResponse: good) == [Self.alert("A")])
        let bad = try JSONDecoder().decode(JSONValue.self, from: Data(#"{"status":"error","error":"boom"}"#.utf8))
        #expect(throws: GateError("Prometheus answered with an error: boom")) { try Alert.parse(alertsResponse: bad) }
    }
}

@Suite struct BearerTokenTests {
    @Test func onlyTheExactTokenPasses() {
        let token = BearerToken("s3cret")
        let cases: [(String?, Bool)] = [
            ("Bearer s3cret", true), ("Bearer s3cret ", false), ("Bearer s3cre", false), ("Bearer s3cretX", false),
            ("bearer s3cret", false), ("Basic s3cret", false), ("s3cret", false), (nil, false), ("", false),
            ("Bearer ", false),
        ]
        for (header, accepted) in cases {
            #expect(token.accepts(authorizationHeader: header) == accepted, "\(header ?? "nil")")
        }
    }
}

@Suite struct OptionReaderTests {
    @Test func flagsWinOverTheEnvironmentAndBadValuesNameTheOption() throws {
        let reader = OptionReader(environment: [
            "K8SUP_GATE_WAIT": "90", "K8SUP_EMPTY": "", "K8SUP_FLAG": "yes", "K8SUP_BAD": "soon",
            "K8SUP_URL": "ftp://x",
        ])
        #expect(try reader.seconds(nil, "GATE_WAIT", default: 1800, range: 1...86400) == .seconds(90))
        #expect(try reader.seconds(2.5, "GATE_WAIT", default: 1800, range: 1...86400) == .milliseconds(2500))
        #expect(reader.value(nil, "EMPTY") == nil)
        #expect(try reader.boolean(nil, "FLAG"))
        #expect(throws: SettingsError("K8SUP_BAD=soon is not a number of seconds")) {
            try reader.seconds(nil, "BAD", default: 1, range: 1...2)
        }
        #expect(throws: SettingsError("gate-wait must be in 1.0...2.0 seconds, got 90.0")) {
            try reader.seconds(nil, "GATE_WAIT", default: 1, range: 1...2)
        }
        #expect(throws: SettingsError("url must be an http(s) URL, got ftp://x")) { try reader.url(nil, "URL") }
    }
}

@Suite struct JobTextTests {
    static let job: JSONValue = {
        let text = #"""
            {"id": 7, "state": "running", "current_stage": "workers", "current_node": "worker-2", "error": null,
             "request": {"target_version": "1.34.5", "kind": "patch", "dry_run": true, "stages": "all"},
             "stages": [{"name": "preflight", "status": "succeeded", "duration_seconds": 3.2},
                        {"name": "snapshot", "status": "not_selected", "duration_seconds": null},
                        {"name": "workers", "status": "running", "duration_seconds": null}],
             "nodes": [{"name": "worker-1", "status": "succeeded", "duration_seconds": 125},
                       {"name": "worker-2", "status": "running", "duration_seconds": null}],
             "wait": {"what": "soak of worker-2", "reason": "9 of 10 min left", "since": "2026-11-21T12:00:00.000Z",
                      "deadline": "2026-11-21T12:10:00.000Z", "stage": "workers", "node": "worker-2"},
             "events": {"items": [{"seq": 9, "time": "2026-11-21T12:00:00.000Z", "kind": "would_change",
                                   "stage": "workers", "node": "worker-2", "message": "cordon worker-2"}]}}
            """#
        return try! JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }()

    @Test func theLiveViewShowsStagesNodesTheWaitAndEvents() {
        let start = 1_795_262_400.0  // 2026-11-21T12:00:00Z
        let view = JobText.render(Self.job, now: start + 60)
        #expect(
            view == """
                job 7  running  patch upgrade to 1.34.5 (dry run)
                stages  [ok] preflight 3 s  [-] snapshot  [..] workers
                nodes   [ok] worker-1 2 min 5 s  [..] worker-2
                wait    waiting for soak of worker-2: 9 of 10 min left (1 min of 10 min)
                events
                  12:00:00  workers worker-2  would: cordon worker-2
                """)
        #expect(JobText.summaryLine(Self.job) == "running: patch upgrade to 1.34.5 (dry run), in workers on worker-2")
    }

    @Test func theLiveViewIsCutToTheTerminalSoNoLineWraps() {
        #expect(JobText.fitted("abcdef\nabc\n", width: 4) == ["abc…", "abc", ""])
        #expect(JobText.fitted("upgrade → 1.34.5", width: 16) == ["upgrade → 1.34.5"])
        #expect(JobText.fitted("upgrade → 1.34.5", width: 9) == ["upgrade …"])
    }

    @Test(arguments: [
        ("would_change", "cordon worker-2", "would: cordon worker-2"),
        ("would_change", "would cordon worker-2", "would cordon worker-2"),
        ("warning", "Warning: deleting Pods with local storage", "Warning: deleting Pods with local storage"),
        ("warning", "etcd is slow", "warning: etcd is slow"),
        (
            "stage_failed", "preflight failed: quiet period: failed: X",
            "FAILED: preflight failed: quiet period: failed: X"
        ),
        ("node_failed", "drain timed out", "FAILED: drain timed out"),
        ("info", "cordon worker-2", "cordon worker-2"),
    ])
    func anEventSaysItsKindOnceBeforeItsMessage(kind: String, message: String, shown: String) {
        let event: JSONValue = .object([
            "time": .string("2026-11-21T12:00:00.000Z"), "kind": .string(kind), "message": .string(message),
        ])
        #expect(JobText.eventLine(event) == "12:00:00  -  \(shown)")
    }

    @Test(arguments: [(0.4, "0 s"), (59, "59 s"), (60, "1 min"), (61, "1 min 1 s"), (3700, "1 h 1 min")])
    func durations(seconds: Double, text: String) {
        #expect(JobText.duration(seconds) == text)
    }
}

@Suite struct HostPortTests {
    @Test func addressesWithAndWithoutPorts() throws {
        let read: [(String, Int?, ClosedRange<Int>, String, Int)] = [
            ("10.0.0.1", 22, 1...65535, "10.0.0.1", 22), ("10.0.0.1:2222", 22, 1...65535, "10.0.0.1", 2222),
            ("[fd00::1]:22", 22, 1...65535, "fd00::1", 22), ("[fd00::1]", 22, 1...65535, "fd00::1", 22),
            ("127.0.0.1:0", nil, 0...65535, "127.0.0.1", 0), ("0.0.0.0:8080", nil, 0...65535, "0.0.0.0", 8080),
        ]
        for (text, fallback, ports, host, port) in read {
            let parsed = try HostPort.parse(text, option: "listen", defaultPort: fallback, ports: ports)
            #expect(parsed.host == host && parsed.port == port, "\(text)")
        }
        let refused: [(String, Int?, String)] = [
            ("fd00::1", 22, "master-address must be host, host:port or [v6]:port, got fd00::1"),
            ("[fd00::1", 22, "master-address [fd00::1 has an unclosed ["), (":22", 22, "must be host"),
            ("host:0", 22, "master-address host:0 has no valid port"), ("host:x", 22, "has no valid port"),
            ("127.0.0.1", nil, "master-address must be host:port or [v6]:port, got 127.0.0.1"),
        ]
        for (text, fallback, message) in refused {
            do {
                _ = try HostPort.parse(text, option: "master-address", defaultPort: fallback)
                Issue.record("\(text) was accepted")
            } catch {
                #expect(error.description.contains(message), "\(text): \(error)")
            }
        }
    }
}
