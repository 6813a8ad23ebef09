import FoundationEssentials
import Logging
import ServiceLifecycle
import Shared
import SharedIO

/// The leader lease in the API (`coordination.k8s.io/v1` Lease
/// `k8s-upgrade` in the pod's namespace): acquired before this process
/// touches a job, renewed while it runs them, released when it stops. The
/// decisions are ``LeaderElection``'s; this type reads and writes.
actor LeaderLease {
    let client: KubernetesClient
    let namespace: String
    let name = "k8s-upgrade"
    let election: LeaderElection
    let log: Logger
    /// How often a waiting process asks again.
    let pollInterval: Duration
    /// How often the holder renews (well within the lease's duration).
    let renewInterval: Duration
    /// The version of the lease last read and when it was first seen.
    private var seen: (version: String, at: Double)?
    /// Wall time of the lease's renew and acquire times.
    let clock: any JobClock
    /// Whom we last said we wait for.
    private var announced: String?
    /// Set while waiting: who holds the lease.
    private(set) var waitingFor: String?

    init(
        client: KubernetesClient, namespace: String, election: LeaderElection, log: Logger,
        pollInterval: Duration = .seconds(2), renewInterval: Duration = .seconds(5),
        clock: any JobClock = SystemJobClock()
    ) {
        self.clock = clock
        self.client = client
        self.namespace = namespace
        self.election = election
        self.log = log
        self.pollInterval = pollInterval
        self.renewInterval = renewInterval
    }

    /// Another process holds the lease now.
    struct Lost: Error, CustomStringConvertible {
        let holder: String
        var description: String { "the leader lease is held by \(holder.isEmpty ? "nobody" : holder) now" }
    }

    private var path: String { "/apis/coordination.k8s.io/v1/namespaces/\(namespace)/leases/\(name)" }

    /// Waits until this process holds the lease; false when a graceful
    /// shutdown came first. The API being away is logged and waited out.
    func acquire() async -> Bool {
        while !Task.isShuttingDownGracefully {
            do {
                if try await tryAcquire() {
                    waitingFor = nil
                    return true
                }
            } catch {
                log.error(
                    "could not read or write the leader lease", ["lease": "\(namespace)/\(name)", "error": "\(error)"])
            }
            var left = pollInterval
            while left > .zero, !Task.isShuttingDownGracefully {
                try? await Task.sleep(for: .milliseconds(100))
                left -= .milliseconds(100)
            }
        }
        return false
    }

    private func tryAcquire() async throws -> Bool {
        let object = try await client.getIfExists(path)
        let record = object.map(Self.record)
        let now = clock.now()
        if let record, record.resourceVersion != seen?.version { seen = (record.resourceVersion, now) }
        var holderPodExists: Bool?
        // The holder is the API's answer: look its pod up only by a valid name.
        if let record, !record.holder.isEmpty, record.holder != election.identity,
            ObjectName.isDNS1123Subdomain(record.holder)
        {
            holderPodExists =
                try await client.getIfExists("/api/v1/namespaces/\(namespace)/pods/\(record.holder)") != nil
        }
        switch election.decide(record, firstSeenAt: seen?.at ?? now, now: now, holderPodExists: holderPodExists) {
        case .create:
            do {
                _ = try await client.request(
                    "POST", "/apis/coordination.k8s.io/v1/namespaces/\(namespace)/leases",
                    body: body(transitions: 0, acquired: now), contentType: "application/json",
                    retry: true)
            } catch let error as KubernetesAPIError where error.status == 409 { return false }
            log.info("holding the leader lease", ["lease": "\(namespace)/\(name)", "why": "created"])
            return true
        case .renew:
            guard let object, let record else { return false }
            try await put(object, record: record, acquired: now)
            log.info("holding the leader lease", ["lease": "\(namespace)/\(name)", "why": "already ours"])
            return true
        case let .take(transitions, why):
            guard let object, let record else { return false }
            do {
                try await put(
                    object,
                    record: LeaderElection.Record(
                        holder: election.identity, transitions: transitions, resourceVersion: record.resourceVersion),
                    acquired: now)
            } catch let error as KubernetesAPIError where error.status == 409 { return false }
            log.info("took the leader lease", ["lease": "\(namespace)/\(name)", "why": why])
            return true
        case let .wait(holder):
            waitingFor = holder
            if announced != holder {
                announced = holder
                log.info(
                    "waiting for the leader lease before touching any job",
                    ["lease": "\(namespace)/\(name)", "holder": holder])
            }
            return false
        }
    }

    /// Renews the lease every ``renewInterval`` until the task is
    /// cancelled; throws ``Lost`` when another process holds it. An API
    /// that is away is waited out: nobody else can take the lease then.
    func keepRenewing() async throws {
        while true {
            try await Task.sleep(for: renewInterval)
            do {
                guard let object = try await client.getIfExists(path) else { throw Lost(holder: "") }
                let record = Self.record(object)
                guard record.holder == election.identity else { throw Lost(holder: record.holder) }
                try await put(object, record: record, acquired: nil)
            } catch let error as Lost {
                throw error
            } catch is CancellationError {
                return
            } catch let error as KubernetesAPIError where error.status == 409 {
                continue  // written meanwhile: read it again
            } catch {
                log.warning("could not renew the leader lease", ["lease": "\(namespace)/\(name)", "error": "\(error)"])
            }
        }
    }

    /// Gives the lease up at a clean stop, so that a replacement takes it at once.
    func release() async {
        do {
            guard let object = try await client.getIfExists(path) else { return }
            let record = Self.record(object)
            guard record.holder == election.identity else { return }
            // As client-go's ReleaseOnCancel: no holder, a one-second lease.
            var released = record
            released.holder = ""
            try await put(object, record: released, acquired: nil, duration: 1)
            log.info("released the leader lease", ["lease": "\(namespace)/\(name)"])
        } catch {
            log.warning("could not release the leader lease", ["lease": "\(namespace)/\(name)", "error": "\(error)"])
        }
    }

    /// PUTs the lease with `record`'s holder and transitions, a fresh
    /// renew time, `duration` seconds (default: the election's) and, when
    /// `acquired` is set, that acquire time.
    private func put(
        _ object: JSONValue, record: LeaderElection.Record, acquired: Double?, duration: Int? = nil
    ) async throws {
        var spec = object[["spec"]]?.objectValue ?? [:]
        let now = clock.now()
        spec["holderIdentity"] = .string(record.holder)
        spec["leaseDurationSeconds"] = .number(Double(duration ?? Int(election.leaseDuration)))
        spec["renewTime"] = .string(Self.microTime(now))
        spec["leaseTransitions"] = .number(Double(record.transitions))
        if let acquired { spec["acquireTime"] = .string(Self.microTime(acquired)) }
        var metadata = object[["metadata"]]?.objectValue ?? [:]
        metadata["resourceVersion"] = .string(record.resourceVersion)
        var updated = object.objectValue ?? [:]
        updated["metadata"] = .object(metadata)
        updated["spec"] = .object(spec)
        _ = try await client.request("PUT", path, body: .object(updated), contentType: "application/json", retry: true)
    }

    private func body(transitions: Int, acquired: Double) -> JSONValue {
        .object([
            "apiVersion": .string("coordination.k8s.io/v1"), "kind": .string("Lease"),
            "metadata": .object(["name": .string(name), "namespace": .string(namespace)]),
            "spec": .object([
                "holderIdentity": .string(election.identity),
                "leaseDurationSeconds": .number(Double(Int(election.leaseDuration))),
                "acquireTime": .string(Self.microTime(acquired)), "renewTime": .string(Self.microTime(acquired)),
                "leaseTransitions": .number(Double(transitions)),
            ]),
        ])
    }

    static func record(_ object: JSONValue) -> LeaderElection.Record {
        LeaderElection.Record(
            holder: object[["spec", "holderIdentity"]]?.stringValue ?? "",
            transitions: object[["spec", "leaseTransitions"]]?.intValue ?? 0,
            resourceVersion: object[["metadata", "resourceVersion"]]?.stringValue ?? "")
    }

    /// Kubernetes' MicroTime: RFC 3339 in UTC with exactly six fractional digits.
    static func microTime(_ seconds: Double) -> String {
        let whole = seconds.rounded(.down)
        let date = Date(timeIntervalSince1970: whole)
        let micros = Int(((seconds - whole) * 1_000_000).rounded(.down))
        let text = date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false))
        let digits = String(micros)
        return text.dropLast() + "." + String(repeating: "0", count: 6 - digits.count) + digits + "Z"
    }
}
