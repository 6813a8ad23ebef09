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
/// `-rc`) takes part in comparison, so `1.34.5-1.1` and `v1.34.5+k3s1` both
/// equal `1.34.5`.
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

    /// Creates a release version from its three numbers.
    public init(major: Int, minor: Int, patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.preRelease = []
        self.suffix = ""
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
    }

    /// Reads a version that must be exactly `X.Y.Z` with digits only: the form
    /// accepted wherever a version is about to reach a shell or a request.
    public init(strictRelease text: String) throws(VersionParseError) {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || Self.isDigit($0) }) else {
            throw VersionParseError(input: text, reason: "must be three dot-separated numbers like 1.34.5")
        }
        var rest = Substring(text)
        let numbers = try Self.readCore(&rest, original: text)
        guard rest.isEmpty else {
            throw VersionParseError(input: text, reason: "must be three dot-separated numbers like 1.34.5")
        }
        self.init(major: numbers.0, minor: numbers.1, patch: numbers.2)
    }

    /// Whether this is a pre-release (`-alpha`, `-beta`, `-rc`).
    public var isPreRelease: Bool { !preRelease.isEmpty }

    /// The first release of the next minor: `1.35.0` for `1.34.5`.
    public var nextMinor: KubeVersion { KubeVersion(major: major, minor: minor + 1, patch: 0) }

    /// The release without suffix or pre-release: `1.34.5` for `v1.34.5+k3s1`.
    public var release: KubeVersion { KubeVersion(major: major, minor: minor, patch: patch) }

    /// `1.34` for `1.34.5`: the name of the package repository line.
    public var minorLine: String { "\(major).\(minor)" }

    /// Whether both versions belong to the same minor line.
    public func isSameMinor(as other: KubeVersion) -> Bool {
        major == other.major && minor == other.minor
    }

    /// `1.34.5`, or `1.35.0-rc.1` for a pre-release; never the distribution suffix.
    public var description: String {
        preRelease.isEmpty
            ? "\(major).\(minor).\(patch)" : "\(major).\(minor).\(patch)-\(preRelease.joined(separator: "."))"
    }

    /// `v1.34.5`: the form of the API server's `gitVersion` and of `kubeadm upgrade apply`.
    public var gitVersion: String { "v" + description }

    // MARK: - Identity and order

    public static func == (lhs: KubeVersion, rhs: KubeVersion) -> Bool {
        lhs.major == rhs.major && lhs.minor == rhs.minor && lhs.patch == rhs.patch && lhs.preRelease == rhs.preRelease
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(major)
        hasher.combine(minor)
        hasher.combine(patch)
        hasher.combine(preRelease)
    }

    public static func < (lhs: KubeVersion, rhs: KubeVersion) -> Bool {
        if lhs.major != rhs.major { return lhs.major < rhs.major }
        if lhs.minor != rhs.minor { return lhs.minor < rhs.minor }
        if lhs.patch != rhs.patch { return lhs.patch < rhs.patch }
        return Self.preReleaseLess(lhs.preRelease, rhs.preRelease)
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
