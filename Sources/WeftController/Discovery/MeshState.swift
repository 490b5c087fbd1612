import WeftFilter
import WeftProxy
import Yams

/// What discovery knows about the mesh: its workloads, the service each serves and where, and
/// the filter chains their proxies run. Any discovery backend (a file today, Kubernetes later)
/// produces this; proxies only ever see the snapshots rendered from it.
public struct MeshState: Sendable {
    public var workloads: [WorkloadSpec]
    /// Where it came from (a file path), for errors.
    public var source: String

    public init(workloads: [WorkloadSpec], source: String) {
        self.workloads = workloads
        self.source = source
    }

    /// The workload a proxy belongs to, by namespace and `kind/name`.
    public func workload(namespace: String, ref: WorkloadRef?) -> WorkloadSpec? {
        guard let ref else { return nil }
        return workloads.first { $0.namespace == namespace && $0.ref == ref }
    }
}

/// One workload: its identity, the service it serves, its endpoints and its proxies' chains.
public struct WorkloadSpec: Sendable {
    public var namespace: String
    public var ref: WorkloadRef
    /// The service name callers use (the authority host, e.g. `http://voting/...`).
    public var service: String
    /// Its proxies' inbound addresses: where callers' proxies send its traffic.
    public var endpoints: [ListenAddress]
    /// How many instances are expected (for MESHED in stat); the endpoint count when unknown.
    public var replicas: Int
    /// The `filters` lists for its proxies' listeners, as written (nil: the proxy's default chain).
    public var inboundFilters: YAMLValue?
    public var outboundFilters: YAMLValue?

    public init(namespace: String, ref: WorkloadRef, service: String, endpoints: [ListenAddress], replicas: Int,
                inboundFilters: YAMLValue? = nil, outboundFilters: YAMLValue? = nil) {
        self.namespace = namespace
        self.ref = ref
        self.service = service
        self.endpoints = endpoints
        self.replicas = replicas
        self.inboundFilters = inboundFilters
        self.outboundFilters = outboundFilters
    }
}

/// A discovery state that cannot be used: where (file, line, field) and what, in one line — the
/// same shape as a proxy's config error, since the mesh file is config too.
public typealias DiscoveryError = ConfigError

/// A source of mesh states. The controller takes the first state as the initial one, and each
/// later one as a change; a rejected state is reported and the last good one stays in force.
public protocol Discovery: Sendable {
    /// A short name for logs and `weft check` (e.g. `file config/mesh.yaml`).
    var name: String { get }
    /// States as they change, until cancelled.
    func updates() -> AsyncStream<Result<MeshState, DiscoveryError>>
}

/// A piece of YAML kept as written (its marks give file lines). Yams' `Node` is a plain value
/// type that nothing mutates once composed, so sharing it across tasks is safe.
public struct YAMLValue: @unchecked Sendable {
    public let node: Yams.Node

    public init(_ node: Yams.Node) {
        self.node = node
    }
}
