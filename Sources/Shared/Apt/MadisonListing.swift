/// The output of `apt-cache madison PACKAGE`, parsed.
///
/// apt prints one line per version and index (apt-cache.cc `Madison()`):
/// the package name right-aligned to ten columns, ` | `, the version, ` | `,
/// the index description, for example
/// `   kubeadm | 1.29.4-2.1 | https://pkgs.k8s.io/core:/stable:/v1.29/deb  Packages`.
public struct MadisonListing: Sendable, Equatable {
    /// One version of a package offered by one index.
    public struct Entry: Sendable, Equatable {
        /// The package name (`kubeadm`).
        public let package: String
        /// The exact package version, as `pkg=VERSION` needs it.
        public let version: DebianVersion
        /// The Kubernetes release the package carries.
        public let kubeVersion: KubeVersion
        /// The index description: the repository URI, then `Packages` (or the dpkg status file).
        public let source: String
    }

    /// The usable lines, in the order apt printed them.
    public let entries: [Entry]
    /// Lines that were not usable, with the reason.
    public let problems: [LineProblem]

    /// Parses madison output. Blank lines are ignored; every other line
    /// either becomes an entry or a ``LineProblem``.
    public init(parsing output: String) {
        var entries: [Entry] = []
        var problems: [LineProblem] = []
        for (offset, line) in output.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            if line.allSatisfy(\.isWhitespace) { continue }
            let problem = { (reason: String) in
                problems.append(LineProblem(line: offset + 1, text: String(line), reason: reason))
            }
            let fields = line.split(separator: "|", omittingEmptySubsequences: false)
                .map { $0.trimmingASCIIWhitespace() }
            guard fields.count == 3 else {
                problem("expected three fields separated by \"|\"")
                continue
            }
            let (name, versionText, source) = (fields[0], fields[1], fields[2])
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.:".contains($0)) })
            else {
                problem("\"\(name)\" is not a package name")
                continue
            }
            let version: DebianVersion
            do { version = try DebianVersion(parsing: versionText) } catch {
                problem(error.description)
                continue
            }
            guard let kube = version.kubeVersion else {
                problem("version \(versionText) does not carry a Kubernetes release")
                continue
            }
            guard !source.isEmpty else {
                problem("no index description")
                continue
            }
            entries.append(Entry(package: name, version: version, kubeVersion: kube, source: source))
        }
        self.entries = entries
        self.problems = problems
    }

    /// The newest entry for `package`, by Debian version order.
    public func newest(of package: String) -> Entry? {
        entries.filter { $0.package == package }.max { $0.version < $1.version }
    }

    /// The newest entry for `package` inside one minor line (`1.34`), by Debian version order.
    public func newest(of package: String, inMinorOf version: KubeVersion) -> Entry? {
        entries.filter {
            $0.package == package && $0.kubeVersion.isSameMinor(as: version) && !$0.kubeVersion.isPreRelease
        }
        .max { $0.version < $1.version }
    }

    /// The entry whose Kubernetes release is exactly `release`; the newest
    /// Debian revision when several are offered.
    public func entry(of package: String, release: KubeVersion) -> Entry? {
        entries.filter { $0.package == package && $0.kubeVersion == release }.max { $0.version < $1.version }
    }
}

extension Substring {
    /// The text without leading and trailing spaces and tabs.
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[start...end])
    }
}

extension MadisonListing {
    /// Why the listing holds no `package` of `running`'s minor, in words an
    /// operator can act on: an apt source left on the next minor by a minor
    /// upgrade that stopped after its repository rewrite, or an empty or
    /// foreign listing.
    public func missingMinor(of package: String, running: KubeVersion, node: String) -> String {
        let listed = entries.filter { $0.package == package }
        let minors = Set(listed.map(\.kubeVersion.minorLine)).sorted()
        if !listed.isEmpty, listed.allSatisfy({ $0.kubeVersion.isSameMinor(as: running.nextMinor) }) {
            let versions = listed.map(\.version.text)
            return "the apt source on \(node) points at the next minor: apt-cache madison \(package) lists only "
                + "\(running.nextMinor.minorLine) (\(versions.last ?? "") … \(versions.first ?? "")), "
                + "while the cluster runs \(running). A minor upgrade rewrote the sources and stopped before "
                + "its first control plane: resume its job, or point the sources back at v\(running.minorLine) "
                + "(runbook: Roll back, \"A minor that stopped after its repository rewrite\")"
        }
        if listed.isEmpty {
            return "apt-cache madison \(package) on \(node) lists no \(package) for \(running.minorLine)"
                + (entries.isEmpty ? " (empty output: is the repository configured?)" : "")
        }
        return "apt-cache madison \(package) on \(node) lists no \(package) for \(running.minorLine), only "
            + minors.joined(separator: ", ")
    }
}
