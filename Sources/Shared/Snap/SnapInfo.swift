/// The output of `snap info microk8s`, parsed: what the snap tracks, what
/// is installed, and what each channel offers (REFERENCE.md §7.1).
///
/// snapd prints key/value lines, then `channels:` with one line per
/// `<track>/<risk>` (`  1.34/stable:  v1.34.1  2025-10-14 (8491) 184MB classic`;
/// a closed channel shows `^`, `↑`, `--` or `–` instead of a version), then
/// `installed:`. Track order is the store's, not numeric.
public struct SnapInfo: Sendable, Equatable {
    /// One channel line.
    public struct Channel: Sendable, Equatable {
        /// `1.34/stable`.
        public let name: String
        /// The Kubernetes release the channel carries; `nil` when it is closed.
        public let version: KubeVersion?
        public let revision: Int?

        public init(name: String, version: KubeVersion?, revision: Int?) {
            self.name = name
            self.version = version
            self.revision = revision
        }
    }

    /// `tracking:`, such as `1.34/stable`.
    public let tracking: String?
    /// The installed release, from `installed:`.
    public let installed: KubeVersion?
    public let channels: [Channel]
    /// Channel lines that were not usable, with the reason.
    public let problems: [LineProblem]

    static let closedMarks: Set<String> = ["^", "↑", "--", "–"]

    public init(parsing output: String) {
        var tracking: String?
        var installed: KubeVersion?
        var channels: [Channel] = []
        var problems: [LineProblem] = []
        var inChannels = false
        for (offset, raw) in output.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = String(raw)
            let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
            guard let key = words.first else { continue }
            let indented = line.first?.isWhitespace == true
            if !indented || key == "installed:" { inChannels = false }
            switch key {
            case "tracking:" where !indented: tracking = words.dropFirst().first
            case "channels:" where !indented: inChannels = true
            case "installed:": installed = words.dropFirst().first.flatMap { try? KubeVersion(parsing: $0) }
            default:
                guard inChannels else { continue }
                guard key.hasSuffix(":"), key.count > 1, words.count >= 2 else {
                    problems.append(LineProblem(line: offset + 1, text: line, reason: "expected CHANNEL: VERSION …"))
                    continue
                }
                let name = String(key.dropLast())
                if Self.closedMarks.contains(words[1]) {
                    channels.append(Channel(name: name, version: nil, revision: nil))
                    continue
                }
                guard let version = try? KubeVersion(parsing: words[1]) else {
                    problems.append(
                        LineProblem(line: offset + 1, text: line, reason: "\(words[1]) is not a Kubernetes version"))
                    continue
                }
                let revision = words.first { $0.hasPrefix("(") && $0.hasSuffix(")") }.flatMap {
                    Int($0.dropFirst().dropLast())
                }
                channels.append(Channel(name: name, version: version, revision: revision))
            }
        }
        self.tracking = tracking
        self.installed = installed
        self.channels = channels
        self.problems = problems
    }

    /// The release `<minor>/stable` carries (`1.34/stable`), or `nil` when
    /// that channel is closed or not listed: MicroK8s' newest patch of a
    /// minor, and whether a next minor is out.
    public func stable(of minor: KubeVersion) -> KubeVersion? {
        channels.first { $0.name == "\(minor.minorLine)/stable" }?.version
    }
}
