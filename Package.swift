// swift-tools-version:6.1
import PackageDescription

/// Weft: a service mesh whose data plane is a chain of filters loaded by name from a registry.
///
/// Modules, one per concern:
/// - `CPCRE2` / `WeftRegex`: bounded, JIT-compiled PCRE2 matching.
/// - `WeftFilter`: the filter API (callbacks, actions, context), the registry and the chain.
/// - `WeftRouting`: pure route matching (no I/O).
/// - `WeftFilters`: the built-in filters, one folder each.
/// - `WeftProxy`: the HTTP/1.1 data plane on SwiftNIO (listeners, upstream pool, admin, reload).
/// - `WeftProxyMain`: the command that runs a proxy, shared by `weft-proxy` and `weft proxy`.
/// - `Plugins/*`: custom filters, ordinary targets registered by name like the built-ins.
let package = Package(
    name: "weft",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "weft-proxy", targets: ["weft-proxy"]),
        .executable(name: "weft", targets: ["weft"]),
        .library(name: "WeftFilter", targets: ["WeftFilter"]),
        .library(name: "WeftFilterTesting", targets: ["WeftFilterTesting"]),
        .library(name: "WeftRegex", targets: ["WeftRegex"]),
        .library(name: "WeftRouting", targets: ["WeftRouting"]),
        .library(name: "WeftFilters", targets: ["WeftFilters"]),
        .library(name: "WeftHeaderRewrite", targets: ["WeftHeaderRewrite"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CPCRE2",
            pkgConfig: "libpcre2-8",
            providers: [.apt(["libpcre2-dev"])]
        ),
        .target(name: "WeftRegex", dependencies: ["CPCRE2"]),
        .target(
            name: "WeftFilter",
            dependencies: [
                "WeftRegex",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "WeftRouting",
            dependencies: [
                "WeftRegex",
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .target(
            name: "WeftFilters",
            dependencies: ["WeftFilter", "WeftRouting", "WeftRegex", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "WeftProxy",
            dependencies: [
                "WeftFilter",
                "WeftFilters",
                "WeftRegex",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP2", package: "swift-nio-extras"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "WeftProxyMain",
            dependencies: [
                "WeftProxy",
                "WeftFilter",
                "WeftHeaderRewrite",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(name: "weft-proxy", dependencies: ["WeftProxyMain"]),
        .executableTarget(
            name: "weft",
            dependencies: [
                "WeftProxyMain",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "WeftFilterTesting",
            dependencies: [
                "WeftFilter",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),

        // Custom filters: ordinary targets, registered by name in WeftProxyMain/CompiledFilters.swift.
        .target(name: "WeftHeaderRewrite", dependencies: ["WeftFilter"], path: "Plugins/HeaderRewrite"),

        .testTarget(name: "WeftRegexTests", dependencies: ["WeftRegex"]),
        .testTarget(name: "WeftRoutingTests", dependencies: ["WeftRouting"]),
        .testTarget(name: "WeftFilterTests", dependencies: ["WeftFilter", "WeftFilterTesting"]),
        .testTarget(name: "WeftFiltersTests", dependencies: ["WeftFilters", "WeftFilter", "WeftFilterTesting"]),
        .testTarget(
            name: "WeftProxyTests",
            dependencies: [
                "WeftProxy", "WeftProxyMain", "WeftFilter", "WeftFilters",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .testTarget(
            name: "WeftHeaderRewriteTests",
            dependencies: ["WeftHeaderRewrite", "WeftFilterTesting", "WeftFilter", "WeftFilters"],
            path: "Tests/Plugins/HeaderRewriteTests"
        ),
        // Real processes over real sockets: weft-proxy with curl, Python's http.server and websockets.
        .testTarget(name: "IntegrationTests", dependencies: ["weft-proxy"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
