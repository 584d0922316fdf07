// swift-tools-version:6.0
import PackageDescription

#if arch(x86_64)
let md5LaneSettings: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
#else
let md5LaneSettings: [SwiftSetting] = []
#endif

let package = Package(
    name: "lakecache",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lakecache", targets: ["lakecache"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/swift-extras/swift-extras-base64", from: "1.0.0"),
    ],
    targets: [
        // Thin, prefixed C wrappers. Logic lives in Swift.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        .target(name: "CCrypto", linkerSettings: [.linkedLibrary("crypto")]),
        .target(name: "CFuse", linkerSettings: [.linkedLibrary("fuse3")]),
        .target(name: "CSpawn"),
        .target(name: "CLinux"),

        // MD5 over eight buffers at once, for upload parts; compiled for AVX2 on x86_64, called only after
        // CLinux_cpu_has_avx2() (see Digest+Lanes.swift).
        .target(name: "MD5Lanes", swiftSettings: md5LaneSettings),

        // Syscalls with their EINTR handling, errno, thread pools, clocks, text files: every layer may import it.
        .target(name: "Platform", dependencies: ["CLinux", "CSpawn", .product(name: "DequeModule", package: "swift-collections")]),

        .target(
            name: "ObjectStore",
            dependencies: [
                "Platform", "CCurl", "CCrypto", "CLinux", "MD5Lanes",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
            ]
        ),
        .target(
            name: "ReadCache",
            dependencies: [
                "Platform", "ObjectStore",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "WriteBack",
            dependencies: ["Platform", "ObjectStore", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Filesystem",
            dependencies: [
                "Platform", "ObjectStore", "ReadCache", "WriteBack",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FuseBridge",
            dependencies: [
                "CFuse", "Platform", "Filesystem", "ReadCache", "WriteBack", "ObjectStore",
                .product(name: "Logging", package: "swift-log"), .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(name: "Control", dependencies: ["Platform", .product(name: "Logging", package: "swift-log")]),
        // The YAML config file of a namespace of links (`mount --config`), parsed and validated.
        .target(
            name: "MountConfig",
            dependencies: ["Platform", "ObjectStore", .product(name: "Yams", package: "Yams")]
        ),
        // The HTTP/1 server of the daemon's endpoints (events, metrics), on SwiftNIO.
        .target(
            name: "HTTPServing",
            dependencies: [
                "Platform",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The object-store events endpoint: formats, dedupe and order, the journal, SNS signatures.
        .target(
            name: "Events",
            dependencies: [
                "Platform", "Control", "ObjectStore", "Filesystem", "CCrypto", "HTTPServing",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
            ]
        ),
        // The parsers of outside input as fuzzing entry points; `lakecache-fuzz` runs them under libFuzzer.
        .target(
            name: "FuzzTargets",
            dependencies: ["Platform", "ObjectStore", "Control", "MountConfig", "Events", .product(name: "ExtrasBase64", package: "swift-extras-base64")]
        ),
        .executableTarget(name: "lakecache-fuzz", dependencies: ["FuzzTargets"]),
        .executableTarget(
            name: "lakecache",
            dependencies: [
                "Platform", "ObjectStore", "ReadCache", "WriteBack", "Filesystem", "FuseBridge", "Control", "MountConfig", "Events", "CSpawn",
                "HTTPServing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        // Raw-S3 load generator: the backend's own limit in `make bench`, and the bench store's speed check.
        .executableTarget(
            name: "lakecache-s3bench",
            dependencies: ["Platform", "ObjectStore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        .testTarget(name: "ObjectStoreTests", dependencies: ["Platform", "ObjectStore"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ReadCacheTests", dependencies: ["Platform", "ReadCache", "ObjectStore"]),
        .testTarget(name: "WriteBackTests", dependencies: ["Platform", "WriteBack", "ObjectStore"]),
        .testTarget(name: "FilesystemTests", dependencies: ["Platform", "Filesystem", "ReadCache", "WriteBack", "ObjectStore", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ControlTests", dependencies: ["Platform", "Control"]),
        .testTarget(name: "FuseBridgeTests", dependencies: ["FuseBridge", "Filesystem", "CFuse"]),
        .testTarget(name: "MountConfigTests", dependencies: ["MountConfig", "ObjectStore", "Platform"]),
        .testTarget(name: "EventsTests", dependencies: ["Events", "Filesystem", "ObjectStore", "Platform", "Control", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "FuzzTargetsTests", dependencies: ["FuzzTargets"]),
        .testTarget(name: "IntegrationTests", dependencies: ["Platform", "ObjectStore", "WriteBack", "CSpawn"]),
    ]
)
