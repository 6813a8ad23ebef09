/// A Debian package version (`[epoch:]upstream[-revision]`) as read from
/// `apt-cache madison` or a `Packages` index.
///
/// Package versions are read, never built: the Kubernetes repositories use
/// `1.34.5-1.1` but also `1.29.4-2.1`, so the exact string is always taken
/// from the repository. Ordering follows dpkg's algorithm
/// (`dpkg --compare-versions`), so a list sorts the way apt sorts it.
public struct DebianVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The version exactly as the repository wrote it; what `pkg=VERSION` needs.
    public let text: String
    /// The epoch before `:`, `0` when absent.
    public let epoch: Int
    /// The upstream version: `1.34.5` in `1.34.5-1.1`.
    public let upstream: String
    /// The Debian revision after the last `-`: `1.1` in `1.34.5-1.1`; empty when absent.
    public let revision: String

    /// Reads a Debian version string.
    ///
    /// - Throws: ``VersionParseError`` when the text is not a Debian version.
    public init(parsing text: String) throws(VersionParseError) {
        guard !text.isEmpty else { throw VersionParseError(input: text, reason: "is empty") }
        var rest = Substring(text)
        if let colon = rest.firstIndex(of: ":") {
            let epochText = rest[..<colon]
            guard !epochText.isEmpty, epochText.count <= 9, epochText.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(epochText)
            else {
                throw VersionParseError(input: text, reason: "epoch \"\(epochText)\" is not a number")
            }
            epoch = value
            rest = rest[rest.index(after: colon)...]
        } else {
            epoch = 0
        }
        if let dash = rest.lastIndex(of: "-") {
            upstream = String(rest[..<dash])
            revision = String(rest[rest.index(after: dash)...])
            guard !revision.isEmpty else {
                throw VersionParseError(input: text, reason: "revision after \"-\" is empty")
            }
        } else {
            upstream = String(rest)
            revision = ""
        }
        guard let first = upstream.first, first.isASCII, first.isNumber else {
            throw VersionParseError(input: text, reason: "upstream version must start with a digit")
        }
        let upstreamOK = upstream.allSatisfy { ch in
            ch.isASCII && (ch.isLetter || ch.isNumber || ".+~-:".contains(ch))
        }
        let revisionOK = revision.allSatisfy { ch in ch.isASCII && (ch.isLetter || ch.isNumber || ".+~".contains(ch)) }
        guard upstreamOK, revisionOK else {
            throw VersionParseError(input: text, reason: "has characters a Debian version cannot hold")
        }
        self.text = text
    }

    /// The Kubernetes release this package version carries (`1.34.5` for `1.34.5-1.1`).
    public var kubeVersion: KubeVersion? { try? KubeVersion(parsing: upstream) }

    public var description: String { text }

    public static func == (lhs: DebianVersion, rhs: DebianVersion) -> Bool { compare(lhs, rhs) == 0 }

    public func hash(into hasher: inout Hasher) {
        // Equal versions may be spelled differently (`0:1.0` and `1.0`), so
        // hash only what equal versions certainly share.
        hasher.combine(epoch)
    }

    public static func < (lhs: DebianVersion, rhs: DebianVersion) -> Bool { compare(lhs, rhs) < 0 }

    // MARK: - dpkg's comparison (lib/dpkg/version.c, dpkg_version_compare)

    private static func compare(_ lhs: DebianVersion, _ rhs: DebianVersion) -> Int {
        if lhs.epoch != rhs.epoch { return lhs.epoch < rhs.epoch ? -1 : 1 }
        let upstream = compareFragment(Array(lhs.upstream.utf8), Array(rhs.upstream.utf8))
        if upstream != 0 { return upstream }
        return compareFragment(Array(lhs.revision.utf8), Array(rhs.revision.utf8))
    }

    /// `~` sorts before everything, even the end of the string; letters sort
    /// before non-letters.
    private static func order(_ byte: UInt8?) -> Int {
        guard let byte else { return 0 }
        if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { return 0 }
        if (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
        {
            return Int(byte)
        }
        if byte == UInt8(ascii: "~") { return -1 }
        return Int(byte) + 256
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func compareFragment(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            var firstDiff = 0
            while (i < a.count && !isDigit(a[i])) || (j < b.count && !isDigit(b[j])) {
                let ac = order(i < a.count ? a[i] : nil)
                let bc = order(j < b.count ? b[j] : nil)
                if ac != bc { return ac - bc }
                i += 1
                j += 1
            }
            while i < a.count && a[i] == UInt8(ascii: "0") { i += 1 }
            while j < b.count && b[j] == UInt8(ascii: "0") { j += 1 }
            while i < a.count && isDigit(a[i]) && j < b.count && isDigit(b[j]) {
                if firstDiff == 0 { firstDiff = Int(a[i]) - Int(b[j]) }
                i += 1
                j += 1
            }
            if i < a.count && isDigit(a[i]) { return 1 }
            if j < b.count && isDigit(b[j]) { return -1 }
            if firstDiff != 0 { return firstDiff }
        }
        return 0
    }
}
