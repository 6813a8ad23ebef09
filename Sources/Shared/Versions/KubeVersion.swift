/// A Kubernetes release version such as `1.34.5`, read from any of the forms
/// the outside world uses for it.
///
/// Accepted forms: `v1.34.5`, `1.34.5`, a Debian package version
/// `1.34.5-1.1`, a distribution build `v1.34.5+k3s1`, vendor suffixes such as
/// `v1.30.2-eks-3a4c2d1`, MicroK8s kubelets' `v1.22.3-3+9ec7c40ec93c73`, and
/// upstream pre-releases `v1.35.0-rc.1`.
///
/// Identity and order are Kubernetes'; the text after the patch number is
/// kept in ``suffix`` but only a pre-release marker (`-alpha`, `-beta`,
/// `-rc`) and a K3s build (`+k3s2`) take part in comparison, so
/// `1.34.5-1.1` equals `1.34.5`, while `v1.34.5+k3s2` is a rebuild of the
/// same Kubernetes release that sorts after `v1.34.5+k3s1` (and both after
/// `1.34.5`, which no K3s node runs).
public struct KubeVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The major version: `1` for every Kubernetes release so far.
    public let major: Int
    /// The minor version, the unit of the per-minor package repositories.
    public let minor: Int
    /// The patch version inside the minor.
    public let patch: Int
    /// The pre-release identifiers (`["rc", "1"]` for `-rc.1`), empty for a release.
    public let preRelease: [String]
    /// Everything after `major.minor.patch` as written (`-1.1`, `+k3s1`), empty if nothing.
    public let suffix: String
    /// The K3s build of the release (`2` for `v1.34.5+k3s2`), `nil` for
    /// every other distribution. Part of the release's identity: K3s
    /// publishes rebuilds of one Kubernetes release as `+k3s1`, `+k3s2`.
    public let k3sBuild: Int?

    /// Creates a release version from its three numbers (and a K3s build).
    public init(major: Int, minor: Int, patch: Int, k3sBuild: Int? = nil) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.preRelease = []
        self.suffix = k3sBuild.map { "+k3s\($0)" } ?? ""
        self.k3sBuild = k3sBuild
    }

    /// Reads a version in any of the accepted forms.
    ///
    /// - Throws: ``VersionParseError`` naming the input and what is wrong with it.
    public init(parsing text: String) throws(VersionParseError) {
        var rest = Substring(text)
        if rest.first == "v" { rest = rest.dropFirst() }
        let numbers = try Self.readCore(&rest, original: text)
        self.major = numbers.0
        self.minor = numbers.1
        self.patch = numbers.2
        self.suffix = String(rest)
        self.preRelease = try Self.readPreRelease(rest, original: text)
        self.k3sBuild = Self.k3sBuild(of: rest)
    }

    /// Reads a version that must be exactly `X.Y.Z` with digits only, or a
    /// K3s release `X.Y.Z+k3sN`: the forms accepted wherever a version is
    /// about to reach a shell or a request.
    public init(strictRelease text: String) throws(VersionParseError) {
        let strict = "must be three dot-separated numbers like 1.34.5, or a K3s release like 1.34.5+k3s1"
        var rest = Substring(text)
        let core = rest.prefix { $0 != "+" }
        guard !core.isEmpty, core.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || Self.isDigit($0) }) else {
            throw VersionParseError(input: text, reason: strict)
        }
        let numbers = try Self.readCore(&rest, original: text)
        let build = Self.k3sBuild(of: rest)
        guard rest.isEmpty || build.map({ rest == "+k3s\($0)" }) == true else {
            throw VersionParseError(input: text, reason: strict)
        }
        self.init(major: numbers.0, minor: numbers.1, patch: numbers.2, k3sBuild: build)
    }

    /// `N` when `suffix` ends in `+k3sN` (`+k3s2`, `-rc1+k3s1`): digits
    /// only, no leading zero, at most six of them.
    private static func k3sBuild(of suffix: Substring) -> Int? {
        guard let plus = suffix.lastIndex(of: "+") else { return nil }
        let tail = suffix[suffix.index(after: plus)...]
        guard tail.hasPrefix("k3s") else { return nil }
        let digits = tail.dropFirst(3)
        guard (1...6).contains(digits.count), digits.utf8.allSatisfy(isDigit), digits.first != "0" else { return nil }
        return Int(digits)
    }

    /// Whether this is a pre-release (`-alpha`, `-beta`, `-rc`).
    public var isPreRelease: Bool { !preRelease.isEmpty }

    /// The first release of the next minor: `1.35.0` for `1.34.5`.
    public var nextMinor: KubeVersion { KubeVersion(major: major, minor: minor + 1, patch: 0) }

    /// The release without suffix or pre-release, keeping a K3s build:
    /// `1.34.5` for `1.34.5-1.1`, `1.34.5+k3s1` for `v1.34.5+k3s1`.
    public var release: KubeVersion { KubeVersion(major: major, minor: minor, patch: patch, k3sBuild: k3sBuild) }

    /// `1.34` for `1.34.5`: the name of the package repository line.
    public var minorLine: String { "\(major).\(minor)" }

    /// Whether both versions belong to the same minor line.
    public func isSameMinor(as other: KubeVersion) -> Bool {
        major == other.major && minor == other.minor
    }

    /// `1.34.5`, `1.35.0-rc.1` for a pre-release, `1.34.5+k3s2` for a K3s
    /// release; never another distribution's suffix.
    public var description: String {
        let core =
            preRelease.isEmpty
            ? "\(major).\(minor).\(patch)" : "\(major).\(minor).\(patch)-\(preRelease.joined(separator: "."))"
        return k3sBuild.map { core + "+k3s\($0)" } ?? core
    }

    /// `v1.34.5`: the form of the API server's `gitVersion` and of `kubeadm
    /// upgrade apply`; `v1.34.5+k3s2` for K3s, as its kubelets report it.
    public var gitVersion: String { "v" + description }

    // MARK: - Identity and order

    public static func == (lhs: KubeVersion, rhs: KubeVersion) -> Bool {
        lhs.major == rhs.major && lhs.minor == rhs.minor && lhs.patch == rhs.patch && lhs.preRelease == rhs.preRelease
            && lhs.k3sBuild == rhs.k3sBuild
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(major)
        hasher.combine(minor)
        hasher.combine(patch)
        hasher.combine(preRelease)
        hasher.combine(k3sBuild)
    }

    public static func < (lhs: KubeVersion, rhs: KubeVersion) -> Bool {
        if lhs.major != rhs.major { return lhs.major < rhs.major }
        if lhs.minor != rhs.minor { return lhs.minor < rhs.minor }
        if lhs.patch != rhs.patch { return lhs.patch < rhs.patch }
        if lhs.preRelease != rhs.preRelease { return Self.preReleaseLess(lhs.preRelease, rhs.preRelease) }
        return (lhs.k3sBuild ?? 0) < (rhs.k3sBuild ?? 0)
    }

    /// Semantic Versioning 2.0 §11: a release sorts after its pre-releases;
    /// numeric identifiers compare as numbers and sort before alphanumeric ones.
    private static func preReleaseLess(_ lhs: [String], _ rhs: [String]) -> Bool {
        if lhs.isEmpty || rhs.isEmpty { return !lhs.isEmpty && rhs.isEmpty }
        for (left, right) in zip(lhs, rhs) where left != right {
            switch (Int(left), Int(right)) {
            case let (l?, r?): return l < r
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return left < right
            }
        }
        return lhs.count < rhs.count
    }

    // MARK: - Parsing

    private static let preReleaseTags: Set<String> = ["alpha", "beta", "rc"]

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func readCore(_ rest: inout Substring, original: String) throws(VersionParseError) -> (Int, Int, Int)
    {
        var parts: [Int] = []
        for index in 0..<3 {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty else {
                throw VersionParseError(
                    input: original,
                    reason: parts.isEmpty
                        ? "does not start with a version number like 1.34.5"
                        : "needs three numbers (major.minor.patch)")
            }
            guard digits.count <= 9, let value = Int(digits) else {
                throw VersionParseError(input: original, reason: "number \(digits) is too large")
            }
            guard digits.count == 1 || digits.first != "0" else {
                throw VersionParseError(input: original, reason: "number \(digits) has a leading zero")
            }
            parts.append(value)
            rest = rest.dropFirst(digits.count)
            if index < 2 {
                guard rest.first == "." else {
                    throw VersionParseError(input: original, reason: "needs three numbers (major.minor.patch)")
                }
                rest = rest.dropFirst()
            }
        }
        return (parts[0], parts[1], parts[2])
    }

    /// Validates the text after the patch number and extracts a pre-release.
    ///
    /// The suffix must start with `-` or `+` and may hold only the characters
    /// of Semantic Versioning identifiers plus `~` (Debian revisions).
    private static func readPreRelease(_ suffix: Substring, original: String) throws(VersionParseError) -> [String] {
        guard let first = suffix.first else { return [] }
        guard first == "-" || first == "+" else {
            throw VersionParseError(
                input: original, reason: "unexpected \"\(suffix)\" after major.minor.patch")
        }
        let allowed = suffix.dropFirst().allSatisfy { ch in
            ch.isASCII && (ch.isLetter || ch.isNumber || ch == "." || ch == "-" || ch == "+" || ch == "~")
        }
        guard allowed, suffix.count > 1 else {
            throw VersionParseError(
                input: original, reason: "suffix \"\(suffix)\" has characters a version cannot hold")
        }
        guard first == "-" else { return [] }
        let preReleasePart = suffix.dropFirst().prefix { $0 != "+" }
        let identifiers = preReleasePart.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // `rc.1`, `rc1`, `beta.0`: the first identifier names the stage.
        guard let head = identifiers.first else { return [] }
        let tag = String(head.prefix { $0.isLetter })
        guard preReleaseTags.contains(tag) else { return [] }
        let number = head.dropFirst(tag.count)
        let leading = number.isEmpty ? [tag] : [tag, String(number)]
        return leading + identifiers.dropFirst()
    }
}

/// Why a version string was refused.
public struct VersionParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text that was refused, as given.
    public let input: String
    /// What is wrong with it.
    public let reason: String

    public var description: String { "invalid version \"\(input)\": \(reason)" }
}
