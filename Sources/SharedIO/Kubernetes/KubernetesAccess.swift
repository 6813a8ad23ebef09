public import FoundationEssentials
import Shared

/// How to reach an API server: its URL, how to trust it and how to prove
/// who we are. Built from the pod's service account or from a kubeconfig.
public struct KubernetesAccess: Sendable {
    /// `https://host:port`, without a trailing slash.
    public var server: String
    /// CA, client certificate and key.
    public var tls: TLSConfiguration
    /// A bearer token, or where to read it (re-read for every request, as
    /// projected service-account tokens rotate).
    public var token: Token?
    /// The namespace of the context or of the service account.
    public var namespace: String

    public enum Token: Sendable, Equatable {
        case value(String)
        case file(String)
    }

    public init(server: String, tls: TLSConfiguration, token: Token?, namespace: String = "default") {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.tls = tls
        self.token = token
        self.namespace = namespace
    }

    /// The current bearer token, read from its file if need be.
    public func bearerToken() throws -> String? {
        switch token {
        case .value(let value)?: return value
        case .file(let path)?:
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw KubernetesAccessError("cannot read token file \(path)")
            }
            return text.trimmingWhitespace()
        case nil: return nil
        }
    }

    // MARK: - In-cluster

    /// The service account of the pod this runs in (client-go's InClusterConfig):
    /// `KUBERNETES_SERVICE_HOST`/`PORT`, and the token, CA and namespace files.
    public static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        directory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) throws -> KubernetesAccess {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
            let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
        else {
            throw KubernetesAccessError("not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let namespace =
            environment["POD_NAMESPACE"]
            ?? (try? String(contentsOfFile: directory + "/namespace", encoding: .utf8))?.trimmingWhitespace()
            ?? "default"
        return KubernetesAccess(
            server: "https://\(hostPart):\(port)", tls: TLSConfiguration(trustRoots: .file(directory + "/ca.crt")),
            token: .file(directory + "/token"), namespace: namespace)
    }

    // MARK: - kubeconfig

    /// The current context of a kubeconfig file (YAML or JSON). Relative
    /// file paths in it are relative to the file, as kubectl reads them.
    public static func kubeconfig(path: String, context wanted: String? = nil) throws -> KubernetesAccess {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw KubernetesAccessError("cannot read kubeconfig \(path)")
        }
        let config: JSONValue
        do { config = try KubeconfigYAML.parse(text) } catch {
            throw KubernetesAccessError("kubeconfig \(path): \(error)")
        }
        guard case .object = config else { throw KubernetesAccessError("kubeconfig \(path) is not a mapping") }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        func named(_ list: String, _ name: String, _ field: String) throws -> JSONValue {
            let entries = config[[list]]?.arrayValue ?? []
            guard let entry = entries.first(where: { $0[["name"]]?.stringValue == name }), let body = entry[[field]],
                case .object = body
            else { throw KubernetesAccessError("kubeconfig \(path): no \(field) named \"\(name)\"") }
            return body
        }
        func file(_ value: JSONValue?) -> String? {
            guard let path = value?.stringValue, !path.isEmpty else { return nil }
            return path.hasPrefix("/") ? path : base.appendingPathComponent(path).path
        }
        func data(_ value: JSONValue?, _ field: String) throws -> Data? {
            guard let text = value?.stringValue else { return nil }
            guard let decoded = Data(base64Encoded: text, options: .ignoreUnknownCharacters) else {
                throw KubernetesAccessError("kubeconfig \(path): \(field) is not base64")
            }
            return decoded
        }

        guard let contextName = wanted ?? config[["current-context"]]?.stringValue, !contextName.isEmpty else {
            throw KubernetesAccessError("kubeconfig \(path) has no current-context")
        }
        let context = try named("contexts", contextName, "context")
        let cluster = try named("clusters", context[["cluster"]]?.stringValue ?? "", "cluster")
        let user = try context[["user"]].map { try named("users", $0.stringValue ?? "", "user") } ?? .object([:])
        guard let server = cluster[["server"]]?.stringValue, !server.isEmpty else {
            throw KubernetesAccessError("kubeconfig \(path): cluster of context \(contextName) has no server")
        }
        for unsupported in ["exec", "auth-provider", "username"] where user[[unsupported]] != nil {
            throw KubernetesAccessError(
                "kubeconfig \(path): user authentication by \(unsupported) is not supported; use a token or a client certificate"
            )
        }

        var tls = TLSConfiguration()
        if let pem = try data(cluster[["certificate-authority-data"]], "certificate-authority-data") {
            tls.trustRoots = .data(pem)
        } else if let ca = file(cluster[["certificate-authority"]]) {
            tls.trustRoots = .file(ca)
        }
        tls.verifyPeer = cluster[["insecure-skip-tls-verify"]]?.boolValue != true
        if let pem = try data(user[["client-certificate-data"]], "client-certificate-data") {
            tls.clientCertificate = .data(pem)
        } else if let certificate = file(user[["client-certificate"]]) {
            tls.clientCertificate = .file(certificate)
        }
        if let pem = try data(user[["client-key-data"]], "client-key-data") {
            tls.clientKey = .data(pem)
        } else if let key = file(user[["client-key"]]) {
            tls.clientKey = .file(key)
        }
        var token: Token?
        if let value = user[["token"]]?.stringValue, !value.isEmpty {
            token = .value(value)
        } else if let tokenFile = file(user[["tokenFile"]]) {
            token = .file(tokenFile)
        }
        return KubernetesAccess(
            server: server, tls: tls, token: token, namespace: context[["namespace"]]?.stringValue ?? "default")
    }

    /// In-cluster when running in a pod, else the kubeconfig named, else
    /// `$KUBECONFIG` (first entry), else `~/.kube/config`.
    public static func resolve(
        kubeconfig: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    )
        throws -> KubernetesAccess
    {
        if let kubeconfig, !kubeconfig.isEmpty { return try Self.kubeconfig(path: kubeconfig) }
        if environment["KUBERNETES_SERVICE_HOST"] != nil { return try inCluster(environment: environment) }
        if let list = environment["KUBECONFIG"], let first = list.split(separator: ":").first {
            return try Self.kubeconfig(path: String(first))
        }
        guard let home = environment["HOME"] else {
            throw KubernetesAccessError("no kubeconfig: not in a cluster, KUBECONFIG and HOME are unset")
        }
        return try Self.kubeconfig(path: home + "/.kube/config")
    }
}

/// The Kubernetes access configuration is missing or unusable.
public struct KubernetesAccessError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
