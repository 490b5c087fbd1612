import Foundation
import Synchronization
import WeftFilter

/// Everything the data plane needs for one config version, built off the hot path and
/// swapped in whole. Requests keep the snapshot they started with.
public final class ProxySnapshot: Sendable {
    /// The name routes use for the local application (the inbound default destination).
    public static let appBackendName = "app"

    public let config: ProxyConfig
    /// The file's text, as loaded.
    public let source: String
    /// A short hash of the source: the config version.
    public let version: String
    public let loadedAt: Date
    public let inboundChain: FilterChain
    public let outboundChain: FilterChain
    /// Backends by name; includes `app` (the local application).
    public let backends: [String: Backend]

    init(config: ProxyConfig, source: String, inboundChain: FilterChain, outboundChain: FilterChain) {
        self.config = config
        self.source = source
        self.version = Self.hash(source)
        self.loadedAt = Date()
        self.inboundChain = inboundChain
        self.outboundChain = outboundChain
        var backends: [String: Backend] = [:]
        for backend in config.backends {
            backends[backend.name] = Backend(name: backend.name, endpoints: backend.endpoints)
        }
        backends[Self.appBackendName] = Backend(name: Self.appBackendName, endpoints: [config.inbound.app])
        self.backends = backends
    }

    func chain(for direction: TrafficDirection) -> FilterChain {
        direction == .inbound ? inboundChain : outboundChain
    }

    /// FNV-1a 64-bit, hex: stable across runs and machines.
    static func hash(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// A service and its endpoints, picked round-robin (load balancing comes with the retry issue).
public final class Backend: Sendable {
    public let name: String
    public let endpoints: [ListenAddress]
    private let next = Atomic<Int>(0)

    init(name: String, endpoints: [ListenAddress]) {
        self.name = name
        self.endpoints = endpoints
    }

    /// The next endpoint, or nil when there are none.
    func pickEndpoint() -> ListenAddress? {
        guard !endpoints.isEmpty else { return nil }
        if endpoints.count == 1 { return endpoints[0] }
        let turn = next.add(1, ordering: .relaxed).oldValue
        return endpoints[turn % endpoints.count]
    }
}
