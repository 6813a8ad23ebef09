import FoundationEssentials
import Logging
import ServiceLifecycle
import Shared
import SharedIO
import Synchronization

/// Where job notices go. `notify` never waits: a slow or failing webhook
/// must never stop or slow a job.
protocol Notifier: Sendable {
    func notify(_ notice: Notice)
}

/// Posts notices to a Slack incoming webhook, in order, from its own
/// service loop. A failed post is logged and retried once on 429 or 5xx,
/// then dropped; the job is never told.
final class SlackNotifier: Notifier, Service {
    private let webhookURL: String?
    private let http: HTTPClient
    private let log: Logger
    private let queue: AsyncStream<Notice>
    private let input: AsyncStream<Notice>.Continuation

    /// `webhookURL` nil: notices are only logged.
    init(webhookURL: String?, log: Logger) {
        self.webhookURL = webhookURL
        self.log = log
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .seconds(10)
        configuration.connectTimeout = .seconds(5)
        http = HTTPClient(configuration: configuration)
        (queue, input) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1000))
    }

    func notify(_ notice: Notice) {
        log.info("notice", ["job": String(notice.jobID), "title": notice.title])
        guard webhookURL != nil else { return }
        input.yield(notice)
    }

    func run() async throws {
        // A service that returns would stop the whole group: without a
        // webhook there is nothing to send, so wait for shutdown.
        guard let webhookURL else { return try await gracefulShutdown() }
        await withGracefulShutdownHandler {
            for await notice in queue { await post(notice, to: webhookURL) }
        } onGracefulShutdown: {
            self.input.finish()
        }
    }

    private func post(_ notice: Notice, to url: String) async {
        let body = (try? JSONEncoder().encode(notice.slackPayload)) ?? Data()
        let request = HTTPRequest(
            method: "POST", url: url, headers: [("Content-Type", "application/json")], body: body,
            urlIsSecret: true)
        for attempt in 1...2 {
            do {
                let response = try await http.send(request)
                if response.isSuccess { return }
                let retriable = response.status == 429 || response.status >= 500
                log.warning(
                    "Slack webhook refused a notice",
                    [
                        "status": String(response.status), "body": String(response.text.prefix(100)),
                        "attempt": String(attempt),
                    ])
                if !retriable { return }
                let wait = Double(response.header("Retry-After") ?? "") ?? 1
                try? await Task.sleep(for: .seconds(min(wait, 5)))
            } catch {
                log.warning("Slack webhook unreachable", ["error": "\(error)", "attempt": String(attempt)])
                if attempt == 1 { try? await Task.sleep(for: .seconds(1)) }
            }
        }
    }
}

/// The pipeline's gauges: kept here for `/metrics`, pushed to the
/// Pushgateway (group `job=k8s-version-upgrade`) from a service loop that
/// always sends the newest state. A failed push is logged; the job goes on.
final class GaugePublisher: Service {
    static let group = "k8s-version-upgrade"
    private let gauges = Mutex(UpgradeGauges())
    /// The exposition last queued for a push.
    private let queued = Mutex("")
    private let pushgateway: Pushgateway?
    private let log: Logger
    private let changes: AsyncStream<String>
    private let input: AsyncStream<String>.Continuation

    init(pushgatewayURL: String?, log: Logger) {
        pushgateway = pushgatewayURL.map { Pushgateway(baseURL: $0) }
        self.log = log
        (changes, input) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    var current: UpgradeGauges { gauges.withLock { $0 } }

    /// Changes the gauges without a push: for what the service knows at
    /// start (the last success, from the job store), which the next push
    /// carries. A push now would overwrite what a job interrupted by the
    /// restart left in the Pushgateway.
    func seed(_ change: (inout UpgradeGauges) -> Void) {
        gauges.withLock { change(&$0) }
    }

    /// Changes the gauges and queues a push of the new state, unless the
    /// text is what was last queued: every event of a job updates the
    /// progress gauge, which changes at most once a second.
    func update(_ change: (inout UpgradeGauges) -> Void) {
        // Under the gauges' lock, so that pushes are queued in the order of the changes.
        gauges.withLock { value in
            change(&value)
            let text = value.exposition
            let changed = queued.withLock { last in
                defer { last = text }
                return last != text
            }
            if changed { input.yield(text) }
        }
    }

    func run() async throws {
        guard let pushgateway else { return try await gracefulShutdown() }
        await withGracefulShutdownHandler {
            for await exposition in changes {
                do { try await pushgateway.replace(job: Self.group, exposition: exposition) } catch {
                    log.warning("Pushgateway push failed", ["error": "\(error)"])
                }
            }
        } onGracefulShutdown: {
            self.input.finish()
        }
    }
}
