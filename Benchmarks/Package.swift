// swift-tools-version:6.1
import PackageDescription

/// Micro-benchmarks (ordo-one/benchmark): time and allocations per operation of Weft's hot-path
/// pieces, and `nio-floor`, the minimal SwiftNIO proxy `run.sh` measures next to Weft. A package
/// of its own so that CI's build of Weft does not pay for the benchmark tool.
///
///     cd Benchmarks && swift package benchmark
let package = Package(
    name: "WeftBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "weft", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .executableTarget(
            name: "WeftMicro",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "WeftRegex", package: "weft"),
                .product(name: "WeftRouting", package: "weft"),
                .product(name: "WeftFilter", package: "weft"),
                .product(name: "WeftFilters", package: "weft"),
                .product(name: "WeftTelemetry", package: "weft"),
                .product(name: "WeftHeaderRewrite", package: "weft"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Benchmarks/WeftMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The reference row of the end-to-end comparison: the cheapest HTTP/1.1 proxy SwiftNIO allows.
        .executableTarget(
            name: "nio-floor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ],
            path: "Benchmarks/NIOFloor"
        ),
    ]
)
