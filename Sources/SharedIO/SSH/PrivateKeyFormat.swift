import FoundationEssentials
import Shared

/// What a private key file says about itself, read without decrypting it:
/// whether a passphrase protects it and which algorithm it is, so that an
/// encrypted or unsuitable key is reported as such instead of as a vague
/// authentication failure.
struct PrivateKeyFormat: Equatable {
    enum Container: Equatable {
        /// `-----BEGIN OPENSSH PRIVATE KEY-----`
        case openSSH
        /// A PEM key: `RSA`, `EC`, or PKCS#8.
        case pem
    }

    let container: Container
    let isEncrypted: Bool
    /// `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, …; `nil` when the file does not say.
    let keyType: String?

    /// Reads the headers of a key file; `nil` for anything that is not a private key.
    init?(text: String) {
        if let body = Self.armored(text, label: "OPENSSH PRIVATE KEY") {
            guard let parsed = Self.parseOpenSSH(base64: body) else { return nil }
            container = .openSSH
            isEncrypted = parsed.cipher != "none"
            keyType = parsed.keyType
        } else if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            container = .pem
            isEncrypted = true
            keyType = nil
        } else if let label = Self.pemLabel(text) {
            container = .pem
            isEncrypted = text.contains("Proc-Type: 4,ENCRYPTED")
            keyType = label == "RSA" ? "ssh-rsa" : label == "EC" ? "ecdsa" : label == "DSA" ? "ssh-dss" : nil
        } else {
            return nil
        }
    }

    /// `RSA` for `-----BEGIN RSA PRIVATE KEY-----`, empty for PKCS#8's
    /// `-----BEGIN PRIVATE KEY-----`, `nil` when there is no such line.
    private static func pemLabel(_ text: String) -> String? {
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("-----BEGIN ") {
            guard line.hasSuffix("PRIVATE KEY-----") else { continue }
            let label = line.dropFirst("-----BEGIN ".count).dropLast("PRIVATE KEY-----".count)
            return label.trimmingWhitespace()
        }
        return nil
    }

    private static func armored(_ text: String, label: String) -> String? {
        guard let start = text.firstRange(of: "-----BEGIN \(label)-----"),
            let end = text[start.upperBound...].firstRange(of: "-----END \(label)-----")
        else { return nil }
        return text[start.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
    }

    /// PROTOCOL.key: "openssh-key-v1\0", then strings (big-endian uint32
    /// length, bytes): cipher, kdf name, kdf options; a uint32 key count; the
    /// first public key, itself starting with its type as a string.
    private static func parseOpenSSH(base64: String) -> (cipher: String, keyType: String?)? {
        guard let data = Data(base64Encoded: base64) else { return nil }
        var reader = ByteReader(bytes: [UInt8](data))
        let magic = Array("openssh-key-v1\0".utf8)
        guard reader.take(magic.count) == magic, let cipher = reader.string(), reader.string() != nil,
            reader.string() != nil, reader.uint32() != nil, let publicKey = reader.string()
        else { return nil }
        var inner = ByteReader(bytes: publicKey)
        return (String(decoding: cipher, as: UTF8.self), inner.string().map { String(decoding: $0, as: UTF8.self) })
    }
}

/// Reads SSH wire-format fields from bytes; every read fails softly at the end.
private struct ByteReader {
    let data: [UInt8]
    var offset = 0

    init(bytes: [UInt8]) { data = bytes }

    mutating func take(_ count: Int) -> [UInt8]? {
        guard count >= 0, offset + count <= data.count else { return nil }
        defer { offset += count }
        return Array(data[offset..<offset + count])
    }

    mutating func uint32() -> Int? {
        take(4).map { $0.reduce(0) { $0 << 8 | Int($1) } }
    }

    /// A length-prefixed field.
    mutating func string() -> [UInt8]? {
        guard let length = uint32(), length < 1 << 20 else { return nil }
        return take(length)
    }
}
