// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "k8s-upgrade",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "k8s-version-check", targets: ["Detector"]),
        .executable(name: "k8s-upgrade", targets: ["Orchestrator"]),
        .executable(name: "k8s-cluster-sim", targets: ["ClusterSim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
    ],
    targets: [
        // MARK: - C libraries (module map + shim only)
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CLibSSH2",
            pkgConfig: "libssh2",
            providers: [.apt(["libssh2-1-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(name: "CMalloc"),

        // MARK: - Pure core: no I/O, no C
        .target(name: "Shared", swiftSettings: strict),

        // MARK: - Adapters: the only code that imports the C modules
        .target(
            name: "SharedIO",
            dependencies: [
                "Shared", "CCurl", "CLibSSH2", "CSQLite", "CMalloc",
                // HMAC-SHA1 of hashed known_hosts entries.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // MARK: - Binaries
        .executableTarget(
            name: "Detector",
            dependencies: [
                "Shared", "SharedIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "Orchestrator",
            dependencies: [
                "Shared", "SharedIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // MARK: - Test bed

        /// The Kubernetes API simulator: real HTTP, simulated control plane.
        .executableTarget(
            name: "ClusterSim",
            dependencies: [
                "Shared",
                "SharedIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),

        // MARK: - Tests
        .target(
            name: "TestSupport",
            dependencies: ["Shared", "SharedIO"],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "SharedTests", dependencies: ["Shared"], swiftSettings: strict),
        .testTarget(
            name: "SharedIOTests",
            dependencies: ["Shared", "SharedIO", "TestSupport"],
            swiftSettings: strict
        ),
        // The orchestrator and the detector in-process: waits on a test clock, the API simulator on loopback.
        .testTarget(
            name: "OrchestratorTests",
            dependencies: [
                "Orchestrator", "Detector", "ClusterSim", "Shared", "SharedIO", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["Shared", "SharedIO", "TestSupport", "ClusterSim"],
            swiftSettings: strict
        ),
    ]
)
