import Foundation
import Prometheus
import Synchronization
import WeftFilter
import WeftRegex

/// Every metric a proxy exports, in Prometheus' text format on the admin listener's `/metrics`,
/// named like linkerd2-proxy's so dashboards and habits carry over.
///
/// Series are created once per label set (direction, identity, destination service, route,
/// status) and cached, so a request costs a few atomic increments and one histogram update.
/// Labels come from config (identity, backend and route names), never from raw paths or
/// client addresses, so cardinality stays bounded.
public final class MeshMetrics: Sendable {
    /// The swift-prometheus registry holding every series.
    public let registry = PrometheusCollectorRegistry()
    /// Linkerd's `response_latency_ms` buckets.
    public static let latencyBucketsMs: [Double] = [
        1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
        1_000, 2_000, 3_000, 4_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000,
    ]

    private let httpTargets = Mutex<[HTTPTargetKey: HTTPTargetMetrics]>([:])
    private let tcpTargets = Mutex<[TCPKey: TCPMetrics]>([:])
    private let startTime = Date()

    /// Config reloads applied.
    public let configReloads: Counter
    /// Config reloads rejected (the previous config stayed in force).
    public let configRejections: Counter
    /// Connections that sent nothing before protocol detection timed out (then relayed as opaque TCP).
    public let detectionTimeouts: Counter

    public init() {
        configReloads = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "weft_config_reloads", unitName: "total", helpText: "Config reloads, by result."), labels: [("result", "applied")])
        configRejections = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "weft_config_reloads", unitName: "total", helpText: "Config reloads, by result."), labels: [("result", "rejected")])
        detectionTimeouts = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "weft_protocol_detect_timeouts", unitName: "total", helpText: "Connections whose protocol detection timed out (relayed as opaque TCP)."))
    }

    /// The series of one destination (and route) as seen from one listener.
    public func http(direction: TrafficDirection, identity: ProxyIdentity, service: ServiceIdentity?,
                     route: String?) -> HTTPTargetMetrics {
        let key = HTTPTargetKey(direction: direction, identity: identity, service: service, route: route)
        return httpTargets.withLock { targets in
            if let existing = targets[key] { return existing }
            let labels = Self.labels(direction: direction, identity: identity, service: service)
            let target = HTTPTargetMetrics(registry: registry, labels: labels, route: route)
            targets[key] = target
            return target
        }
    }

    /// The TCP series of one listener's connections (`peer: src`) or of upstream connections (`peer: dst`).
    public func tcp(direction: TrafficDirection, peer: TCPMetrics.Peer, identity: ProxyIdentity) -> TCPMetrics {
        let key = TCPKey(direction: direction, peer: peer, identity: identity)
        return tcpTargets.withLock { targets in
            if let existing = targets[key] { return existing }
            var labels = Self.labels(direction: direction, identity: identity, service: nil)
            labels.append(("peer", peer.rawValue))
            let target = TCPMetrics(registry: registry, labels: labels)
            targets[key] = target
            return target
        }
    }

    /// Retry counters of one route (`route_retry_total`, `route_retry_budget_exhausted_total`).
    public func retries(direction: TrafficDirection, identity: ProxyIdentity, route: String) -> RouteRetryMetrics {
        var labels = Self.labels(direction: direction, identity: identity, service: nil)
        labels.append(("route", route))
        return RouteRetryMetrics(registry: registry, labels: labels)
    }

    /// The whole exposition: every series, then process metrics and regex limit hits, read now.
    public func exposition(extra: String = "") -> String {
        var text = registry.emitToString()
        text += ProcessMetrics.read(startTime: startTime)
        text += """
            # HELP weft_regex_limit_hits_total PCRE2 matches stopped by a match, depth or length limit (counted as no match).
            # TYPE weft_regex_limit_hits_total counter
            weft_regex_limit_hits_total \(RegexLimits.hits)

            """
        text += extra
        return text
    }

    /// The labels every series of a listener carries: direction, the proxy's identity, the destination's.
    static func labels(direction: TrafficDirection, identity: ProxyIdentity, service: ServiceIdentity?) -> [(String, String)] {
        var labels: [(String, String)] = [("direction", direction.rawValue), ("namespace", identity.namespace)]
        if let workload = identity.workload, workload.kind != "pod" {
            labels.append((labelName(workload.kind), workload.name))
        }
        if !identity.instance.isEmpty { labels.append(("pod", identity.instance)) }
        if direction == .outbound, let service {
            labels.append(("dst_service", service.service))
            if let namespace = service.namespace { labels.append(("dst_namespace", namespace)) }
            if let workload = service.workload { labels.append(("dst_" + labelName(workload.kind), workload.name)) }
        }
        labels.append(("tls", "false"))
        return labels
    }

    private static func labelName(_ kind: String) -> String {
        String(kind.map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }
}

struct HTTPTargetKey: Hashable {
    var direction: TrafficDirection
    var identity: ProxyIdentity
    var service: ServiceIdentity?
    var route: String?
}

struct TCPKey: Hashable {
    var direction: TrafficDirection
    var peer: TCPMetrics.Peer
    var identity: ProxyIdentity
}

/// The HTTP series of one destination and route: requests, responses by status and
/// classification, and time-to-first-byte latency; with `route_*` twins when a route is known.
public final class HTTPTargetMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let labels: [(String, String)]
    private let routeLabels: [(String, String)]?
    private let requests: Counter
    private let latency: ValueHistogram
    private let routeRequests: Counter?
    private let routeLatency: ValueHistogram?
    /// Response counters by status and classification (most responses of a series share theirs).
    private let responses = Mutex(LastUsedCache<ResponseKey, ResponseCounters>())

    private struct ResponseKey: Hashable {
        var status: Int?
        var grpcStatus: Int?
        var failure: Bool
    }

    private struct ResponseCounters: @unchecked Sendable {
        var total: Counter
        var route: Counter?
    }

    init(registry: PrometheusCollectorRegistry, labels: [(String, String)], route: String?) {
        self.registry = registry
        self.labels = labels
        requests = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "request", unitName: "total", helpText: "Requests sent, per destination."), labels: labels)
        latency = registry.makeValueHistogram(descriptor: MetricNameDescriptor(metricName: "response_latency", unitName: "ms", helpText: "Time from request head to response head, in milliseconds."), labels: labels, buckets: MeshMetrics.latencyBucketsMs)
        if let route {
            let routeLabels = labels + [("route", route)]
            self.routeLabels = routeLabels
            routeRequests = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "route_request", unitName: "total", helpText: "Requests sent, per route."), labels: routeLabels)
            routeLatency = registry.makeValueHistogram(descriptor: MetricNameDescriptor(metricName: "route_response_latency", unitName: "ms", helpText: "Time from request head to response head per route, in milliseconds."), labels: routeLabels, buckets: MeshMetrics.latencyBucketsMs)
        } else {
            routeLabels = nil
            routeRequests = nil
            routeLatency = nil
        }
    }

    /// Counts a request as sent (or answered by the proxy).
    public func recordRequest() {
        requests.increment()
        routeRequests?.increment()
    }

    /// Counts a response and its latency.
    ///
    /// - Parameters:
    ///   - status: the HTTP status sent to the client; nil when none was (reset, client gone).
    ///   - grpcStatus: the gRPC status the call ended with, for gRPC calls.
    ///   - isGRPC: a gRPC call without a status is a failure.
    ///   - failed: the exchange ended in an error (reset, upstream closed early).
    ///   - latencyMs: time to first byte, when a response started.
    public func recordResponse(status: Int?, grpcStatus: Int?, isGRPC: Bool, failed: Bool, latencyMs: Double?) {
        let failure = failed || (status ?? 0) >= 500 || status == nil
            || (isGRPC && (grpcStatus ?? -1) != 0)
        let key = ResponseKey(status: status, grpcStatus: isGRPC ? grpcStatus : nil, failure: failure)
        let counters = responses.withLock { responses in
            responses.value(for: key) {
                var extra: [(String, String)] = []
                if let status { extra.append(("status_code", String(status))) }
                extra.append(("classification", failure ? "failure" : "success"))
                if isGRPC, let grpcStatus { extra.append(("grpc_status_code", String(grpcStatus))) }
                let total = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "response", unitName: "total", helpText: "Responses, by status and classification (failure: 5xx, non-OK gRPC status, or error)."), labels: labels + extra)
                let route = routeLabels.map {
                    registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "route_response", unitName: "total", helpText: "Responses per route, by status and classification."), labels: $0 + extra)
                }
                return ResponseCounters(total: total, route: route)
            }
        }
        counters.total.increment()
        counters.route?.increment()
        if let latencyMs {
            latency.record(latencyMs)
            routeLatency?.record(latencyMs)
        }
    }
}

/// TCP connection series for one listener (`peer="src"`) or its upstream connections (`peer="dst"`).
public final class TCPMetrics: Sendable {
    public enum Peer: String, Sendable, Hashable {
        /// Connections accepted from clients.
        case src
        /// Connections the proxy opened to upstreams.
        case dst
    }

    public let opened: Counter
    public let closed: Counter
    public let open: Gauge
    public let readBytes: Counter
    public let writeBytes: Counter

    init(registry: PrometheusCollectorRegistry, labels: [(String, String)]) {
        opened = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "tcp_open", unitName: "total", helpText: "TCP connections opened."), labels: labels)
        closed = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "tcp_close", unitName: "total", helpText: "TCP connections closed."), labels: labels)
        open = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "tcp_open", unitName: "connections", helpText: "TCP connections open now."), labels: labels)
        readBytes = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "tcp_read_bytes", unitName: "total", helpText: "Bytes read from TCP connections."), labels: labels)
        writeBytes = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "tcp_write_bytes", unitName: "total", helpText: "Bytes written to TCP connections."), labels: labels)
    }

    public func connectionOpened() {
        opened.increment()
        open.increment()
    }

    public func connectionClosed() {
        closed.increment()
        open.decrement()
    }
}

/// What the router did about retries on one route.
public final class RouteRetryMetrics: RetryObserver {
    private let retriesSent: Counter
    private let exhausted: Counter

    init(registry: PrometheusCollectorRegistry, labels: [(String, String)]) {
        retriesSent = registry.makeCounter(
            descriptor: MetricNameDescriptor(metricName: "route_retry", unitName: "total", helpText: "Retries sent, per route."),
            labels: labels)
        exhausted = registry.makeCounter(
            descriptor: MetricNameDescriptor(metricName: "route_retry_budget_exhausted", unitName: "total",
                                             helpText: "Retries wanted but refused because the route's retry budget was spent."),
            labels: labels)
    }

    public func retried() { retriesSent.increment() }
    public func budgetExhausted() { exhausted.increment() }
}
