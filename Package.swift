// swift-tools-version:6.0
import PackageDescription

// Dependency direction (ARCHITECTURE.md): avmae-serve -> HTTPServer -> Serving -> {AVMAE, Media} -> C libraries.
let package = Package(
    name: "avmae-serve",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "avmae-serve", targets: ["avmae-serve"]),
        .library(name: "AVMAE", targets: ["AVMAE"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        // 2.4.1: HELP text on families with labels (PrometheusCollectorRegistry.make*(name:labels:help:)).
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // One pkgConfig per system library target; libavformat's -I covers all five FFmpeg libraries.
        .systemLibrary(
            name: "CFFmpeg", pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev"])]
        ),
        .systemLibrary(name: "CSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),

        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        // oneDNN: the int8/bf16 compute engine. Debian ships no dnnl.pc, so no pkgConfig.
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // glibc's _GNU_SOURCE calls (memfd_create, pipe2, posix_spawn_file_actions_addclosefrom_np): declarations only.
        .systemLibrary(name: "CLinux"),
        // GnuTLS (libmicrohttpd's TLS library) for SHA-256, wrapped once in Checksum.
        .systemLibrary(name: "CGnuTLS", pkgConfig: "gnutls", providers: [.apt(["libgnutls28-dev"])]),

        // Checksum: SHA-256 over GnuTLS, for clip fingerprints and model versions.
        .target(name: "Checksum", dependencies: ["CGnuTLS"]),

        // CCPU: cpuid/xgetbv and an FMA loop compiled per instruction set, which Swift cannot express.
        .target(name: "CCPU"),
        .target(name: "AVMAE", dependencies: ["CBLAS", "CCPU", "CDNNL"]),
        .target(name: "Media", dependencies: ["CFFmpeg", "CSndFile"]),

        // Serving: no C, no JSON. Batching, the inference worker, lifecycle.
        .target(
            name: "Serving",
            dependencies: [
                "AVMAE", "Media",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // HTTPServer: the only place that knows HTTP and JSON.
        .target(
            name: "HTTPServer",
            dependencies: [
                "Serving", "AVMAE", "Media", "CMicroHTTPD", "CLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // Compiled into the binary as byte arrays (`PackageResources`): no resource bundle to install.
            resources: [
                .embedInCode("Playground/index.html"), .embedInCode("Playground/playground.js"),
                .embedInCode("Playground/playground.css"),
            ]
        ),

        // SystemIntegration: systemd's notify and socket-activation protocols over plain Glibc sockets
        // (no libsystemd); a library so DeployTests can import it.
        .target(name: "SystemIntegration", dependencies: [.product(name: "Logging", package: "swift-log")]),

        // DecodeIsolation: decoding in sandboxed worker processes (posix_spawn, memfd, seccomp). The parent side is
        // a `ClipDecoding`; the worker side is the loop the executable's hidden `decode-worker` runs.
        .target(
            name: "DecodeIsolation",
            dependencies: [
                "Serving", "Media", "CSeccomp", "CLinux", "Checksum", "SystemIntegration",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),

        .executableTarget(
            name: "avmae-serve",
            dependencies: [
                "AVMAE", "Media", "Serving", "HTTPServer", "SystemIntegration", "CCPU", "DecodeIsolation", "Checksum",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        .testTarget(name: "AVMAETests", dependencies: ["AVMAE"], resources: [.copy("Fixtures")]),
        .testTarget(name: "MediaTests", dependencies: ["Media"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ServingTests", dependencies: ["Serving"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "Serving", "AVMAE", "Media"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DeployTests", dependencies: ["SystemIntegration"]),
        .testTarget(name: "DecodeIsolationTests", dependencies: ["DecodeIsolation", "Serving", "Media", "AVMAE"]),
    ],
    swiftLanguageModes: [.v5]
)
