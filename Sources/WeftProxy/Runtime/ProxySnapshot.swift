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
    /// The controller's snapshot version when pushed; otherwise a short hash of the source.
    public let version: String
    public let loadedAt: Date
    /// Who this proxy is (from config and environment).
    public let identity: ProxyIdentity
    public let inboundChain: FilterChain
    public let outboundChain: FilterChain
    /// Backends by name; includes `app` (the local application).
    public let backends: [String: Backend]
    /// The circuit breaker's rules, derived from config once.
    let failureAccrual: FailureAccrual

    init(config: ProxyConfig, source: String, version: String? = nil, identity: ProxyIdentity, inboundChain: FilterChain, outboundChain: FilterChain) {
        self.config = config
        self.identity = identity
        self.source = source
        self.version = version ?? Self.hash(source)
        self.loadedAt = Date()
        self.inboundChain = inboundChain
        self.outboundChain = outboundChain
        var backends: [String: Backend] = [:]
        for backend in config.backends {
            let service = ServiceIdentity(service: backend.service ?? backend.name, namespace: backend.namespace,
                                          workload: backend.workload.flatMap(WorkloadRef.init(parsing:)))
            backends[backend.name] = Backend(service: service, endpoints: backend.endpoints)
        }
        // Inbound requests go to the local app: the proxy's own workload.
        let app = ServiceIdentity(service: Self.appBackendName, namespace: identity.namespace, workload: identity.workload)
        backends[Self.appBackendName] = Backend(service: app, endpoints: [config.inbound.app])
        self.backends = backends
        self.failureAccrual = config.upstream.failureAccrual.policy
    }

    func chain(for direction: TrafficDirection) -> FilterChain {
        direction == .inbound ? inboundChain : outboundChain
    }

    /// FNV-1a 64-bit, hex: stable across runs and machines (config versions, here and in the controller).
    public static func hash(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
