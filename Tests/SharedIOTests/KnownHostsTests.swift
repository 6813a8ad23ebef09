import Foundation
import Testing

@testable import SharedIO

@Suite("known_hosts: which key types a host has, and what the handshake asks for")
struct KnownHostsTests {
    static let text = """
        # comment
        10.0.0.4,node-4 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
        [10.0.0.5]:2222 ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY=
        [10.0.0.5]:2222 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ==
        *.example.com,!bad.example.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ==
        node-? ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQ=
        @revoked 10.0.0.6 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
        @cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
        |1|\(hashedSalt)|\(hashedHash) ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
        broken-line
        """
    static let hashedSalt = "kcHL8GcO1jE9Qd4GwkdHk9Mgs2I="
    /// HMAC-SHA1 of "[10.0.0.7]:2222" keyed by the salt, as `ssh-keygen -H` writes it.
    static let hashedHash = "P/1ZeqA4ANxKBCYOZk1hZt+JQKU="

    @Test(
        arguments: [
            ("10.0.0.4", 22, ["ssh-ed25519"]),
            ("node-4", 22, ["ssh-ed25519", "ecdsa-sha2-nistp384"]),
            ("NODE-4", 22, ["ssh-ed25519", "ecdsa-sha2-nistp384"]),
            ("10.0.0.4", 2222, []),
            ("10.0.0.5", 2222, ["ecdsa-sha2-nistp256", "ssh-rsa"]),
            ("10.0.0.5", 22, []),
            ("a.example.com", 22, ["ssh-rsa"]),
            ("bad.example.com", 22, []),
            ("10.0.0.6", 22, []),
            ("10.0.0.7", 2222, ["ssh-ed25519"]),
            ("10.0.0.7", 22, []),
        ])
    func keyTypes(host: String, port: Int, expected: [String]) {
        #expect(KnownHosts(text: Self.text).keyTypes(forHost: host, port: port) == expected)
    }

    @Test(
        arguments: [
            (
                ["ssh-ed25519"],
                "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa"
            ),
            (
                ["ecdsa-sha2-nistp256"],
                "ecdsa-sha2-nistp256,ssh-ed25519,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa"
            ),
            (
                ["ssh-rsa", "ssh-ed25519"],
                "rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521"
            ),
            (
                [],
                "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa"
            ),
            (
                ["ssh-dss"],
                "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa"
            ),
        ])
    func methods(types: [String], expected: String) {
        #expect(KnownHosts.methods(for: types) == expected)
    }

    @Test(
        arguments: [
            ("*", "anything", true), ("node-?", "node-1", true), ("node-?", "node-10", false),
            ("*.example.com", "a.b.example.com", true), ("*.example.com", "example.com", false),
            ("[10.0.0.*]:2222", "[10.0.0.5]:2222", true), ("a*b*c", "aXXbYYc", true), ("a*b*c", "aXXbYY", false),
        ])
    func wildcard(pattern: String, text: String, expected: Bool) {
        #expect(KnownHosts.wildcard(pattern, matches: text) == expected)
    }
}
