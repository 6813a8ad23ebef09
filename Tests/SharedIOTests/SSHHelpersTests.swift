import Foundation
import Testing

@testable import SharedIO

@Suite struct LineSplitterTests {
    @Test func splitsAcrossChunks() {
        var splitter = LineSplitter()
        #expect(splitter.append(Data("one\ntw".utf8)) == ["one"])
        #expect(splitter.append(Data("o\r\nthree\n\nfo".utf8)) == ["two", "three", ""])
        #expect(splitter.append(Data()) == [])
        #expect(splitter.finish() == "fo")
        #expect(splitter.finish() == nil)
    }

    @Test func multibyteCharacterSplitBetweenChunks() {
        var splitter = LineSplitter()
        let bytes = Array("→ done\n".utf8)
        #expect(splitter.append(Data(bytes[0..<1])) == [])
        #expect(splitter.append(Data(bytes[1...])) == ["→ done"])
    }
}

@Suite struct PrivateKeyFormatTests {
    private static func openSSH(cipher: String, keyType: String) -> String {
        func string(_ bytes: [UInt8]) -> [UInt8] {
            let n = UInt32(bytes.count)
            return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + bytes
        }
        let publicKey = string(Array(keyType.utf8)) + string([1, 2, 3])
        let body =
            Array("openssh-key-v1\0".utf8) + string(Array(cipher.utf8)) + string(Array("none".utf8)) + string([])
            + [0, 0, 0, 1] + string(publicKey)
        return
            "-----BEGIN OPENSSH PRIVATE KEY-----\n\(Data(body).base64EncodedString())\n-----END OPENSSH PRIVATE KEY-----\n"
    }

    @Test(
        arguments: [
            (openSSH(cipher: "none", keyType: "ssh-ed25519"), false, "ssh-ed25519"),
            (openSSH(cipher: "aes256-ctr", keyType: "ssh-ed25519"), true, "ssh-ed25519"),
            (openSSH(cipher: "none", keyType: "ssh-rsa"), false, "ssh-rsa"),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n", false, "ssh-rsa"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIE\n-----END RSA PRIVATE KEY-----\n",
                true, "ssh-rsa"
            ),
            ("-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n", false, "ecdsa"),
            ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----\n", true, nil),
            ("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", false, nil),
        ] as [(String, Bool, String?)])
    func readsHeaders(text: String, encrypted: Bool, keyType: String?) throws {
        let format = try #require(PrivateKeyFormat(text: text))
        #expect(format.isEncrypted == encrypted)
        #expect(format.keyType == keyType)
    }

    @Test(arguments: [
        "", "ssh-ed25519 AAAAC3Nza user@host", "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n!!!not base64!!!\n-----END OPENSSH PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
    ])
    func rejectsNonKeys(text: String) {
        #expect(PrivateKeyFormat(text: text) == nil)
    }
}
