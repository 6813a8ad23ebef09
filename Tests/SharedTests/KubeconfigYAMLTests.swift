import Testing

@testable import Shared

@Suite struct KubeconfigYAMLTests {
    /// The shape kubeadm writes to /etc/kubernetes/admin.conf.
    static let adminConf = """
        apiVersion: v1
        clusters:
        - cluster:
            certificate-authority-data: LS0tLS1CRUdJTi==
            server: https://10.0.0.10:6443
          name: kubernetes
        contexts:
        - context:
            cluster: kubernetes
            user: kubernetes-admin
          name: kubernetes-admin@kubernetes
        current-context: kubernetes-admin@kubernetes
        kind: Config
        preferences: {}
        users:
        - name: kubernetes-admin
          user:
            client-certificate-data: Q0VSVA==
            client-key-data: S0VZ
        """

    @Test func readsKubeadmsAdminConf() throws {
        let config = try KubeconfigYAML.parse(Self.adminConf)
        #expect(config[["current-context"]]?.stringValue == "kubernetes-admin@kubernetes")
        let cluster = config[["clusters"]]?.arrayValue?.first
        #expect(cluster?[["name"]]?.stringValue == "kubernetes")
        #expect(cluster?[["cluster", "server"]]?.stringValue == "https://10.0.0.10:6443")
        #expect(config[["users"]]?.arrayValue?.first?[["user", "client-key-data"]]?.stringValue == "S0VZ")
        #expect(config[["preferences"]] == .object([:]))
    }

    @Test func readsFlowStyleQuotesCommentsAndIndentedSequences() throws {
        let text = """
            # written by hand
            apiVersion: v1
            kind: Config
            clusters:
              - name: "sim"   # quoted name
                cluster:
                  server: 'https://127.0.0.1:6443'
                  insecure-skip-tls-verify: true
            contexts:
            - name: sim
              context: {cluster: sim, user: admin, namespace: "kube-system"}
            users:
            - {name: admin, user: {tokenFile: /run/token}}
            current-context: sim
            extensions: [a, 'b''s', "c#d"]
            empty:
            """
        let config = try KubeconfigYAML.parse(text)
        #expect(config[["clusters"]]?.arrayValue?.first?[["name"]]?.stringValue == "sim")
        #expect(
            config[["clusters"]]?.arrayValue?.first?[["cluster", "server"]]?.stringValue == "https://127.0.0.1:6443")
        #expect(config[["clusters"]]?.arrayValue?.first?[["cluster", "insecure-skip-tls-verify"]] == .bool(true))
        #expect(config[["contexts"]]?.arrayValue?.first?[["context", "namespace"]]?.stringValue == "kube-system")
        #expect(config[["users"]]?.arrayValue?.first?[["user", "tokenFile"]]?.stringValue == "/run/token")
        #expect(config[["extensions"]] == .array([.string("a"), .string("b's"), .string("c#d")]))
        #expect(config[["empty"]] == .null)
    }

    @Test func readsJSON() throws {
        let config = try KubeconfigYAML.parse(
            #"{"apiVersion": "v1", "clusters": [{"name": "x", "cluster": {"server": "https://h:1"}}]}"#)
        #expect(config[["clusters"]]?.arrayValue?.first?[["cluster", "server"]]?.stringValue == "https://h:1")
    }

    @Test(arguments: [
        ("a: 1\n\tb: 2", 2, "tabs"),
        ("a: |\n  text", 1, "block scalars"),
        ("a: &x 1", 1, "anchors"),
        ("a: 1\na: 2", 2, "duplicate key"),
        ("a:\n  b: 1\n c: 2", 3, "indentation"),
        ("a: \"open", 1, "unterminated"),
        ("a: {b: 1", 1, "expected"),
    ])
    func refusesWithTheLine(text: String, line: Int, message: String) {
        #expect {
            try KubeconfigYAML.parse(text)
        } throws: { error in
            guard let error = error as? KubeconfigYAML.ParseError else { return false }
            return error.line == line && error.message.contains(message)
        }
    }

    @Test func dns1123() {
        #expect(ObjectName.isDNS1123Subdomain("worker-1"))
        #expect(ObjectName.isDNS1123Subdomain("node.example.com"))
        #expect(!ObjectName.isDNS1123Subdomain("Worker"))
        #expect(!ObjectName.isDNS1123Subdomain("-a"))
        #expect(!ObjectName.isDNS1123Subdomain("a;rm -rf"))
        #expect(!ObjectName.isDNS1123Subdomain(""))
        #expect(!ObjectName.isDNS1123Subdomain(String(repeating: "a", count: 64)))
    }
}
