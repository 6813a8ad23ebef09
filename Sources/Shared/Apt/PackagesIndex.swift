/// A Debian `Packages` index, as served at the root of a flat repository
/// such as `https://pkgs.k8s.io/core:/stable:/v1.34/deb/Packages`.
///
/// Stanzas are separated by blank lines; each holds `Field: value` lines,
/// with continuation lines starting with a space or a tab. One stanza per
/// package, version and architecture, in no particular order.
public struct PackagesIndex: Sendable, Equatable {
    /// One stanza: one version of one package for one architecture.
    public struct Package: Sendable, Equatable {
        /// `Package:`
        public let name: String
        /// `Version:`, exactly as written.
        public let version: DebianVersion
        /// `Architecture:` (`amd64`, `arm64`, `all`, …); empty when the stanza has none.
        public let architecture: String
        /// `Filename:`, the path of the `.deb` below the repository root; empty when absent.
        public let filename: String
        /// The Kubernetes release the package carries, if its upstream version is one.
        public var kubeVersion: KubeVersion? { version.kubeVersion }
    }

    /// The stanzas that had a usable `Package` and `Version`, in file order.
    public let packages: [Package]
    /// Lines and stanzas that were not usable, with the reason.
    public let problems: [LineProblem]

    /// Parses an index; malformed lines and incomplete stanzas are reported
    /// in ``problems`` and left out of ``packages``.
    public init(parsing text: String) {
        var packages: [Package] = []
        var problems: [LineProblem] = []
        var fields: [String: String] = [:]
        var stanzaStart = 0
        var lastField: String?

        func finishStanza() {
            defer {
                fields = [:]
                lastField = nil
            }
            guard !fields.isEmpty else { return }
            let summary = fields["Package"].map { "stanza for \($0)" } ?? "stanza"
            guard let name = fields["Package"], !name.isEmpty else {
                problems.append(LineProblem(line: stanzaStart, text: summary, reason: "stanza has no Package field"))
                return
            }
            guard let versionText = fields["Version"] else {
                problems.append(LineProblem(line: stanzaStart, text: summary, reason: "stanza has no Version field"))
                return
            }
            do {
                let version = try DebianVersion(parsing: versionText)
                packages.append(
                    Package(
                        name: name, version: version, architecture: fields["Architecture"] ?? "",
                        filename: fields["Filename"] ?? ""))
            } catch {
                problems.append(LineProblem(line: stanzaStart, text: summary, reason: error.description))
            }
        }

        for (offset, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let lineNumber = offset + 1
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) {
                finishStanza()
                continue
            }
            if line.first == " " || line.first == "\t" {
                // A continuation line belongs to the previous field; only
                // multi-line fields (Description, hashes) use them.
                if lastField == nil {
                    problems.append(
                        LineProblem(line: lineNumber, text: String(line), reason: "continuation line outside a field"))
                }
                continue
            }
            if fields.isEmpty { stanzaStart = lineNumber }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                problems.append(LineProblem(line: lineNumber, text: String(line), reason: "expected \"Field: value\""))
                lastField = nil
                continue
            }
            let name = String(line[..<colon])
            guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                problems.append(
                    LineProblem(line: lineNumber, text: String(line), reason: "\"\(name)\" is not a field name"))
                lastField = nil
                continue
            }
            fields[name] = line[line.index(after: colon)...].trimmingASCIIWhitespace()
            lastField = name
        }
        finishStanza()
        self.packages = packages
        self.problems = problems
    }

    /// The Kubernetes releases offered for `package` (any architecture),
    /// newest first, pre-releases left out.
    public func releases(of package: String) -> [KubeVersion] {
        let releases = Set(packages.filter { $0.name == package }.compactMap(\.kubeVersion).filter { !$0.isPreRelease })
        return releases.sorted(by: >)
    }

    /// The newest version of `package` by Debian order, optionally for one architecture.
    public func newest(of package: String, architecture: String? = nil) -> Package? {
        packages.filter { $0.name == package && (architecture == nil || $0.architecture == architecture) }
            .max { $0.version < $1.version }
    }
}
