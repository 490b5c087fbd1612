import Foundation
import Logging
import NIOConcurrencyHelpers
import WeftControllerAPI
import WeftFilter

/// A proxy as the controller knows it: who it is, where to reach it, and where its config stands.
public struct ProxyStatus: Codable, Sendable {
    public struct Nack: Codable, Sendable {
        public var version: String
        public var error: String
    }
    public var namespace: String
    /// `kind/name`; empty when the proxy did not say.
    public var workload: String
    public var instance: String
    public var proxyVersion: String
    public var adminAddress: String
    public var tapAddress: String
    public var connected: Bool
    /// The version the controller wants this proxy on now.
    public var latestVersion: String?
    /// The last version it applied (ACK).
    public var ackedVersion: String?
    /// The last snapshot it rejected, and why.
    public var nack: Nack?
    /// Whether the workload is in discovery (a proxy of an unknown workload gets backends only).
    public var known: Bool
}

/// The controller's state: the mesh in force (last good discovery state), the proxies connected
/// to it and their ACK state, and who to notify when a proxy's snapshot may have changed.
public final class MeshController: Sendable {
    public let renderer: SnapshotRenderer
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct Entry {
        var hello: Weft_Controller_V1_Hello
        var connected: Bool
        var ackedVersion: String?
        var nack: ProxyStatus.Nack?
        var disconnectedAt: Date?
        var wake: AsyncStream<Void>.Continuation?
    }

    private struct State {
        var mesh: MeshState?
        var discoveryError: String?
        var warnings: [String] = []
        var generation = 0
        var proxies: [Int: Entry] = [:]
        var nextID = 0
        var cache: [String: RenderedSnapshot] = [:]
    }

    public init(renderer: SnapshotRenderer, logger: Logger) {
        self.renderer = renderer
        self.logger = logger
    }

    // MARK: Discovery

    /// Takes a discovery update: a valid state replaces the mesh and wakes every proxy stream; an
    /// invalid one is logged and recorded, and the last good state stays.
    public func apply(_ update: Result<MeshState, DiscoveryError>) {
        let outcome: Result<(MeshState, [String]), DiscoveryError> = update.flatMap { mesh in
            Result { () throws(DiscoveryError) in (mesh, try renderer.validate(mesh)) }
        }
        switch outcome {
        case .success(let (mesh, warnings)):
            for warning in warnings { logger.warning("\(warning)") }
            let wakes = state.withLockedValue { state -> [AsyncStream<Void>.Continuation] in
                state.mesh = mesh
                state.discoveryError = nil
                state.warnings = warnings
                state.generation += 1
                state.cache = [:]
                return state.proxies.values.compactMap(\.wake)
            }
            logger.info("mesh state applied", metadata: ["source": "\(mesh.source)", "workloads": "\(mesh.workloads.count)"])
            for wake in wakes { wake.yield() }
        case .failure(let error):
            let kept = state.withLockedValue { state -> Bool in
                state.discoveryError = error.description
                return state.mesh != nil
            }
            logger.error("mesh state rejected\(kept ? ", keeping the last good one" : ""): \(error.description)")
        }
    }

    /// The discovery state in force (nil until the first good one).
    public var mesh: MeshState? { state.withLockedValue { $0.mesh } }

    /// The last rejected discovery update, until a good one replaces it.
    public var discoveryError: String? { state.withLockedValue { $0.discoveryError } }

    // MARK: Proxies

    /// Registers a proxy stream; the stream wakes (first right away) whenever its snapshot may have changed.
    func connect(_ hello: Weft_Controller_V1_Hello) -> (id: Int, wakes: AsyncStream<Void>) {
        let (wakes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        continuation.yield()
        let id = state.withLockedValue { state -> Int in
            // The same instance reconnecting replaces its old entry.
            state.proxies = state.proxies.filter { !($0.value.hello.namespace == hello.namespace && $0.value.hello.workload == hello.workload && $0.value.hello.instance == hello.instance) }
            state.nextID += 1
            state.proxies[state.nextID] = Entry(hello: hello, connected: true, ackedVersion: hello.configVersion.isEmpty ? nil : hello.configVersion,
                                                nack: nil, disconnectedAt: nil, wake: continuation)
            return state.nextID
        }
        logger.info("proxy connected", metadata: ["namespace": "\(hello.namespace)", "workload": "\(hello.workload)", "instance": "\(hello.instance)"])
        return (id, wakes)
    }

    func disconnect(_ id: Int) {
        let hello = state.withLockedValue { state -> Weft_Controller_V1_Hello? in
            guard var entry = state.proxies[id] else { return nil }
            entry.connected = false
            entry.disconnectedAt = Date()
            entry.wake?.finish()
            entry.wake = nil
            state.proxies[id] = entry
            // Forget proxies gone for five minutes.
            let cutoff = Date().addingTimeInterval(-300)
            state.proxies = state.proxies.filter { ($0.value.disconnectedAt ?? .distantFuture) > cutoff }
            return entry.hello
        }
        if let hello {
            logger.info("proxy disconnected", metadata: ["namespace": "\(hello.namespace)", "workload": "\(hello.workload)", "instance": "\(hello.instance)"])
        }
    }

    func record(_ ack: Weft_Controller_V1_Ack, from id: Int) {
        let hello = state.withLockedValue { state -> Weft_Controller_V1_Hello? in
            guard var entry = state.proxies[id] else { return nil }
            if ack.error.isEmpty {
                entry.ackedVersion = ack.version
                entry.nack = nil
            } else {
                entry.nack = .init(version: ack.version, error: ack.error)
            }
            state.proxies[id] = entry
            return entry.hello
        }
        guard let hello, !ack.error.isEmpty else { return }
        logger.error("proxy rejected snapshot \(ack.version) (NACK): \(ack.error)",
                     metadata: ["namespace": "\(hello.namespace)", "workload": "\(hello.workload)", "instance": "\(hello.instance)"])
    }

    /// The snapshot for a proxy, or nil before discovery has produced a good state.
    func snapshot(for hello: Weft_Controller_V1_Hello) -> RenderedSnapshot? {
        state.withLockedValue { state -> RenderedSnapshot? in
            guard let mesh = state.mesh else { return nil }
            let key = "\(hello.namespace) \(hello.workload)"
            if let cached = state.cache[key] { return cached }
            let rendered = renderer.render(mesh, namespace: hello.namespace, workload: WorkloadRef(parsing: hello.workload))
            state.cache[key] = rendered
            return rendered
        }
    }

    /// Every proxy that has connected (disconnected ones are kept for five minutes).
    public var proxies: [ProxyStatus] {
        let entries = state.withLockedValue { Array($0.proxies.values) }
        let mesh = self.mesh
        return entries.map { entry in
            let hello = entry.hello
            return ProxyStatus(
                namespace: hello.namespace, workload: hello.workload, instance: hello.instance,
                proxyVersion: hello.proxyVersion, adminAddress: hello.adminAddress, tapAddress: hello.tapAddress,
                connected: entry.connected, latestVersion: snapshot(for: hello)?.version,
                ackedVersion: entry.ackedVersion, nack: entry.nack,
                known: mesh?.workload(namespace: hello.namespace, ref: WorkloadRef(parsing: hello.workload)) != nil)
        }.sorted { ($0.namespace, $0.workload, $0.instance) < ($1.namespace, $1.workload, $1.instance) }
    }

    /// Discovery warnings for the state in force (e.g. filters the controller cannot check).
    public var warnings: [String] { state.withLockedValue { $0.warnings } }
}
