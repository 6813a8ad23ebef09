/// Checks an `Authorization: Bearer …` header against the expected token in
/// constant time: the comparison always walks the whole expected token,
/// whatever was sent, so its timing tells nothing about how much matched.
public struct BearerToken: Sendable {
    private let expected: [UInt8]

    /// - Precondition: `token` is not empty.
    public init(_ token: String) {
        precondition(!token.isEmpty, "an empty bearer token would let everyone in")
        expected = Array(token.utf8)
    }

    /// Whether `header` is `Bearer <the token>`.
    public func accepts(authorizationHeader header: String?) -> Bool {
        let prefix = Array("Bearer ".utf8)
        let sent = Array((header ?? "").utf8)
        let given = sent.starts(with: prefix) ? Array(sent.dropFirst(prefix.count)) : []
        var difference = (given.count ^ expected.count) | (sent.starts(with: prefix) ? 0 : 1)
        for index in expected.indices {
            difference |= Int(expected[index] ^ (index < given.count ? given[index] : 0))
        }
        return difference == 0
    }
}
