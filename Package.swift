// swift-tools-version: 6.2
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "reelfarm",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "coordinator", targets: ["Coordinator"]),
        .executable(name: "worker", targets: ["Worker"]),
        .executable(name: "mock-provider", targets: ["MockProvider"]),
        .executable(name: "reelfarm-bench", targets: ["ReelfarmBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.0.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.8.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
    ],
    targets: [
        // libzmq, through Debian's libzmq3-dev (zmq.h is on the default include path).
        .systemLibrary(
            name: "CZMQ",
            providers: [.apt(["libzmq3-dev"])]
        ),
        // Wire messages and their codec. No I/O, no sockets.
        .target(
            name: "Protocol",
            swiftSettings: strictSettings
        ),
        // The ZeroMQ wrapper, configuration, logging and clocks both executables use.
        .target(
            name: "Shared",
            dependencies: [
                "CZMQ",
                "Protocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "Coordinator",
            dependencies: [
                "Protocol",
                "Shared",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "Worker",
            dependencies: [
                "Protocol",
                "Shared",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // Real provider answers (status, headers, body) recorded as JSON, for the mock and the worker's tests.
        .target(
            name: "ProviderFixtures",
            dependencies: ["Protocol"],
            path: "Sources/ProviderFixtures",
            resources: [.copy("Fixtures")],
            swiftSettings: strictSettings
        ),
        // A stand-in for the OpenAI-compatible, Hugging Face and ElevenLabs APIs, with their limits and
        // 429s, for tests and benchmarks.
        .executableTarget(
            name: "MockProvider",
            dependencies: [
                "Protocol",
                "ProviderFixtures",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"],
            swiftSettings: strictSettings
        ),
        // In-process measurements for bench/run (transport ceiling, codec cost); never part of the tests.
        .executableTarget(
            name: "ReelfarmBench",
            dependencies: [
                "Protocol",
                "Shared",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "bench/swift",
            swiftSettings: strictSettings
        ),
        .testTarget(name: "ProtocolTests", dependencies: ["Protocol"], swiftSettings: strictSettings),
        .testTarget(name: "SharedTests", dependencies: ["Shared", "CZMQ"], swiftSettings: strictSettings),
        .testTarget(
            name: "CoordinatorTests",
            dependencies: [
                "Coordinator", "Protocol", "Shared",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WorkerTests",
            dependencies: ["Worker", "Protocol", "Shared", "ProviderFixtures"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MockProviderTests",
            dependencies: [
                "MockProvider",
                "Protocol",
                "ProviderFixtures",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
        // Start the real `coordinator` and `worker` binaries on loopback.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Protocol", "Shared", "Coordinator", "Worker",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
