public import Shared

/// The per-minor repositories in pkgs.k8s.io's shape
/// (`<base>/v1.<N>/deb/{Release,Packages}`): which releases of a package a
/// minor offers, or that it is not published. One reading for the detector
/// (the next minor) and pre-flight (a minor's target), which each had their own.
public struct PackageRepository: Sendable {
    /// What a minor's repository says.
    public enum Minor: Sendable, Equatable {
        /// `Release` answered 403 or 404: not published (yet).
        case notPublished
        /// Published; the releases of the package its `Packages` index lists,
        /// newest first, and how many of the index's lines were unusable.
        case published([KubeVersion], unusableLines: Int)
    }

    public let base: String
    let http: HTTPClient

    public init(base: String, http: HTTPClient) {
        self.base = base
        self.http = http
    }

    /// The repository folder of `minor`'s line.
    public func folder(of minor: KubeVersion) -> String { "\(base)/v\(minor.minorLine)/deb" }

    /// Reads `minor`'s repository: `HEAD Release` (403 or 404: not
    /// published), then its `Packages` index. Other answers are errors
    /// naming the URL and the status.
    public func minor(_ minor: KubeVersion, package: String) async throws -> Minor {
        let folder = folder(of: minor)
        let head = try await http.send(HTTPRequest(method: "HEAD", url: folder + "/Release"))
        switch head.status {
        case 200: break
        case 403, 404: return .notPublished
        default: throw PackageRepositoryError("HEAD \(folder)/Release answered HTTP \(head.status)")
        }
        let packages = try await http.send(HTTPRequest(url: folder + "/Packages"))
        guard packages.status == 200 else {
            throw PackageRepositoryError("GET \(folder)/Packages answered HTTP \(packages.status)")
        }
        let index = PackagesIndex(parsing: packages.text)
        return .published(index.releases(of: package), unusableLines: index.problems.count)
    }
}

public struct PackageRepositoryError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
