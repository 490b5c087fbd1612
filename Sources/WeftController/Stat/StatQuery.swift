import Foundation
import WeftFilter

/// One row of `weft stat`: a resource's traffic over the window.
public struct StatRow: Codable, Sendable, Equatable {
    public var namespace: String
    public var name: String
    /// `ready/expected` proxies, for workload rows of the plain view.
    public var meshed: String?
    /// Responses seen in the window, and how many succeeded.
    public var requests: Int
    public var successes: Int
    /// successes / requests; nil without traffic.
    public var successRate: Double?
    public var rps: Double
    public var latencyP50Ms: Double?
    public var latencyP95Ms: Double?
    public var latencyP99Ms: Double?
    public var tcpConnections: Int?
}

/// One edge of `weft edges`: traffic from one workload to another.
public struct EdgeRow: Codable, Sendable, Equatable {
    public var source: String
    public var sourceNamespace: String
    public var destination: String
    public var destinationNamespace: String
    public var requests: Int
    public var successes: Int
    public var successRate: Double?
    public var rps: Double
}

/// What `weft stat` asks for.
public struct StatRequest: Sendable {
    /// The rows: every resource of this kind (`name` nil) or one.
    public var resource: ResourceRef
    /// Only traffic sent by this resource (rows are its destinations).
    public var from: ResourceRef?
    /// Only traffic sent to this resource (rows are its callers).
    public var to: ResourceRef?
    public var windowSeconds: Double

    public init(resource: ResourceRef, from: ResourceRef? = nil, to: ResourceRef? = nil, windowSeconds: Double = 60) {
        self.resource = resource
        self.from = from
        self.to = to
        self.windowSeconds = windowSeconds
    }
}

/// Computes stat rows and edges from a metrics window (and the mesh, for resources without traffic).
public enum StatQuery {
    public static func rows(_ request: StatRequest, window: MetricsWindow, mesh: MeshState?, proxies: [ProxyStatus]) throws(StatError) -> [StatRow] {
        if request.from != nil && request.to != nil {
            throw StatError.badRequest("use --from or --to, not both")
        }
        let kind = request.resource.kind
        let select: (Sample) -> Bool
        let group: (Sample) -> (namespace: String, name: String)?
        if let from = request.from {
            if kind == .pod { throw StatError.badRequest("rows of kind po cannot be destinations (--from): proxies see services and workloads, not callee pods") }
            select = { $0.labels["direction"] == "outbound" && matchesSource(from, $0.labels) }
            group = { destination(kind, $0.labels) }
        } else if let to = request.to {
            if kind == .service { throw StatError.badRequest("rows of kind svc cannot be callers (--to): use deploy, po or ns") }
            if to.kind == .pod { throw StatError.badRequest("--to po/… is not supported: proxies see services and workloads, not callee pods") }
            select = { $0.labels["direction"] == "outbound" && matchesDestination(to, $0.labels) }
            group = { source(kind, $0.labels) }
        } else if kind == .service {
            select = { $0.labels["direction"] == "outbound" }
            group = { destination(kind, $0.labels) }
        } else {
            select = { $0.labels["direction"] == "inbound" }
            group = { source(kind, $0.labels) }
        }

        struct Key: Hashable { var namespace: String; var name: String }
        var totals: [Key: (requests: Double, successes: Double)] = [:]
        var buckets: [Key: [Double: Double]] = [:]
        for sample in window.increases where select(sample) {
            guard let (namespace, name) = group(sample) else { continue }
            let key = Key(namespace: namespace, name: name)
            if sample.name == "response_total" {
                var total = totals[key] ?? (0, 0)
                total.requests += sample.value
                if sample.labels["classification"] == "success" { total.successes += sample.value }
                totals[key] = total
            } else if sample.name == "response_latency_ms_bucket", let le = sample.labels["le"].flatMap(bound) {
                buckets[key, default: [:]][le, default: 0] += sample.value
            }
        }
        // TCP connections: the plain view's inbound client connections.
        var connections: [Key: Double] = [:]
        if request.from == nil && request.to == nil && kind != .service {
            for sample in window.gauges where sample.labels["direction"] == "inbound" && sample.labels["peer"] == "src" {
                guard let (namespace, name) = source(kind, sample.labels) else { continue }
                connections[Key(namespace: namespace, name: name), default: 0] += sample.value
            }
        }

        // Resources the mesh knows appear even without traffic, in the plain view.
        var keys = Set(totals.keys)
        if request.from == nil && request.to == nil, let mesh {
            for workload in mesh.workloads {
                switch kind {
                case .workload(let kindName) where workload.ref.kind == kindName:
                    keys.insert(Key(namespace: workload.namespace, name: workload.ref.name))
                case .service: keys.insert(Key(namespace: workload.namespace, name: workload.service))
                case .namespace: keys.insert(Key(namespace: workload.namespace, name: workload.namespace))
                default: break
                }
            }
            if kind == .pod {
                for proxy in proxies where proxy.connected { keys.insert(Key(namespace: proxy.namespace, name: proxy.instance)) }
            }
        }
        let wanted = request.resource
        let rows = keys.filter { key in
            (wanted.name == nil || wanted.name == key.name) && (wanted.namespace == nil || wanted.namespace == key.namespace)
        }.map { key -> StatRow in
            let total = totals[key] ?? (0, 0)
            let histogram = buckets[key] ?? [:]
            var meshed: String?
            if request.from == nil && request.to == nil, case .workload(let kindName) = kind {
                let ready = proxies.filter { $0.connected && $0.namespace == key.namespace && WorkloadRef(parsing: $0.workload) == WorkloadRef(kind: kindName, name: key.name) }.count
                let expected = mesh?.workloads.first { $0.namespace == key.namespace && $0.ref == WorkloadRef(kind: kindName, name: key.name) }?.replicas ?? ready
                meshed = "\(ready)/\(expected)"
            }
            return StatRow(
                namespace: key.namespace, name: key.name, meshed: meshed,
                requests: Int(total.requests.rounded()), successes: Int(total.successes.rounded()),
                successRate: total.requests > 0 ? total.successes / total.requests : nil,
                rps: window.seconds > 0 ? total.requests / window.seconds : 0,
                latencyP50Ms: quantile(0.5, histogram), latencyP95Ms: quantile(0.95, histogram), latencyP99Ms: quantile(0.99, histogram),
                tcpConnections: connections[key].map { Int($0.rounded()) })
        }
        if let name = wanted.name, rows.isEmpty, request.from == nil, request.to == nil {
            throw StatError.notFound("no \(wanted.kind.shortName) named \(name)\(wanted.namespace.map { " in namespace \($0)" } ?? ""): not in discovery and no traffic seen")
        }
        return rows.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
    }

    /// Every workload-to-workload edge with traffic in the window, from the callers' proxies.
    public static func edges(kind: ResourceKind, namespace: String?, window: MetricsWindow) throws(StatError) -> [EdgeRow] {
        guard case .workload = kind else {
            throw StatError.badRequest("edges are between workloads: use deploy (or another workload kind)")
        }
        struct Key: Hashable { var source: String; var sourceNamespace: String; var destination: String; var destinationNamespace: String }
        var totals: [Key: (requests: Double, successes: Double)] = [:]
        for sample in window.increases where sample.name == "response_total" && sample.labels["direction"] == "outbound" {
            guard let (sourceNamespace, sourceName) = source(kind, sample.labels),
                  let (destinationNamespace, destinationName) = destination(kind, sample.labels) else { continue }
            if let namespace, sourceNamespace != namespace && destinationNamespace != namespace { continue }
            let key = Key(source: sourceName, sourceNamespace: sourceNamespace, destination: destinationName, destinationNamespace: destinationNamespace)
            var total = totals[key] ?? (0, 0)
            total.requests += sample.value
            if sample.labels["classification"] == "success" { total.successes += sample.value }
            totals[key] = total
        }
        return totals.map { key, total in
            EdgeRow(source: key.source, sourceNamespace: key.sourceNamespace, destination: key.destination,
                    destinationNamespace: key.destinationNamespace, requests: Int(total.requests.rounded()),
                    successes: Int(total.successes.rounded()), successRate: total.requests > 0 ? total.successes / total.requests : nil,
                    rps: window.seconds > 0 ? total.requests / window.seconds : 0)
        }.sorted { ($0.sourceNamespace, $0.source, $0.destinationNamespace, $0.destination) < ($1.sourceNamespace, $1.source, $1.destinationNamespace, $1.destination) }
    }

    // MARK: Labels

    /// The series' own proxy, as a resource of `kind`.
    static func source(_ kind: ResourceKind, _ labels: [String: String]) -> (String, String)? {
        guard let namespace = labels["namespace"] else { return nil }
        switch kind {
        case .workload(let name): return labels[name].map { (namespace, $0) }
        case .pod: return labels["pod"].map { (namespace, $0) }
        case .namespace: return (namespace, namespace)
        case .service: return nil
        }
    }

    /// The series' destination, as a resource of `kind`.
    static func destination(_ kind: ResourceKind, _ labels: [String: String]) -> (String, String)? {
        guard let namespace = labels["dst_namespace"] else { return nil }
        switch kind {
        case .workload(let name): return labels["dst_" + name].map { (namespace, $0) }
        case .service: return labels["dst_service"].map { (namespace, $0) }
        case .namespace: return (namespace, namespace)
        case .pod: return nil
        }
    }

    static func matchesSource(_ resource: ResourceRef, _ labels: [String: String]) -> Bool {
        guard let (namespace, name) = source(resource.kind, labels) else { return false }
        return (resource.namespace == nil || resource.namespace == namespace) && (resource.name == nil || resource.name == name)
    }

    static func matchesDestination(_ resource: ResourceRef, _ labels: [String: String]) -> Bool {
        guard let (namespace, name) = destination(resource.kind, labels) else { return false }
        return (resource.namespace == nil || resource.namespace == namespace) && (resource.name == nil || resource.name == name)
    }

    static func bound(_ text: String) -> Double? {
        text == "+Inf" ? .infinity : Double(text)
    }

    /// A quantile from cumulative bucket counts, interpolated within its bucket (like Prometheus'
    /// `histogram_quantile`); nil without observations.
    static func quantile(_ q: Double, _ buckets: [Double: Double]) -> Double? {
        let sorted = buckets.sorted { $0.key < $1.key }
        guard let total = sorted.last?.value, total > 0 else { return nil }
        let rank = q * total
        var previousBound = 0.0
        var previousCount = 0.0
        for (bound, count) in sorted {
            if count >= rank {
                if bound.isInfinite { return previousBound }
                let inBucket = count - previousCount
                guard inBucket > 0 else { return bound }
                return previousBound + (bound - previousBound) * (rank - previousCount) / inBucket
            }
            previousBound = bound
            previousCount = count
        }
        return previousBound
    }
}
