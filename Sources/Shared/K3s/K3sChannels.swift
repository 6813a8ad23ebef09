/// The channel server's list (`GET /v1-release/channels`, rancher's
/// channelserver; REFERENCE.md §8.2, DISTRIBUTIONS.md §2.1): a collection
/// whose `data[]` items name a channel in `id` (`stable`, `latest`,
/// `v1.34`, …) and its newest release in `latest` (`v1.34.5+k3s1`). One
/// channel per minor, `v1.X`, for every minor, EOL ones included.
public struct K3sChannels: Sendable, Equatable {
    /// Each channel's newest release, by channel id.
    public var latest: [String: KubeVersion]
    /// Items that could not be read, for the error that names them.
    public var problems: [String]

    public init(latest: [String: KubeVersion], problems: [String] = []) {
        self.latest = latest
        self.problems = problems
    }

    /// Reads the collection. A document that is not one throws; an item
    /// without an id is a problem; an item without `latest` is a channel
    /// with nothing in it yet (the server resolves regexps from GitHub, and
    /// a fresh minor's channel can be empty), so it is left out.
    public init(json text: String) throws(PlanError) {
        guard let document = try? JSONValue.parse(text), let items = document[["data"]]?.arrayValue else {
            throw PlanError(
                "the channel server did not answer with its channel list ({\"data\": [{\"id\", \"latest\"}]}): "
                    + ProbeOutput.tail(String(text.prefix(300))))
        }
        var latest: [String: KubeVersion] = [:]
        var problems: [String] = []
        for item in items {
            guard let id = item[["id"]]?.stringValue, !id.isEmpty else {
                problems.append("an item without an id")
                continue
            }
            guard let text = item[["latest"]]?.stringValue, !text.isEmpty else { continue }
            do {
                let version = try KubeVersion(parsing: text)
                guard version.k3sBuild != nil else {
                    problems.append("channel \(id): \(text) is not a K3s release (no +k3sN)")
                    continue
                }
                latest[id] = version
            } catch {
                problems.append("channel \(id): \(error)")
            }
        }
        self.init(latest: latest, problems: problems)
    }

    /// The channel of `version`'s minor: `v1.34`.
    public static func channel(of version: KubeVersion) -> String { "v\(version.minorLine)" }

    /// The newest release of `version`'s minor, when the server lists its
    /// channel and that channel's release is in the minor.
    public func newest(inMinorOf version: KubeVersion) -> KubeVersion? {
        guard let newest = latest[Self.channel(of: version)], newest.isSameMinor(as: version) else { return nil }
        return newest
    }
}
