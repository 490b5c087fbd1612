import NIOCore
import Synchronization
import WeftFilter
import WeftTelemetry

/// Counts requests and responses and records time-to-first-byte, per destination and route
/// (`request_total`, `response_total`, `response_latency_ms`, `route_*`).
///
/// A request counts when it is sent upstream, or when it ends if the proxy answered it itself;
/// its response counts once, when the exchange is over, with its classification: a failure is
/// a 5xx, a gRPC call ending with a non-OK status (or none), or an exchange that broke off.
struct MetricsFilter: HTTPFilter {
    let metrics: MeshMetrics
    let direction: TrafficDirection
    let identity: ProxyIdentity
    /// This chain's series by destination and route: direction and identity are fixed per
    /// chain, so the key hashes two short strings rather than the whole label set.
    private let series = SeriesCache()

    init(metrics: MeshMetrics, direction: TrafficDirection, identity: ProxyIdentity) {
        self.metrics = metrics
        self.direction = direction
        self.identity = identity
    }

    func onDispatch(_ target: UpstreamTarget, context: RequestContext) {
        series(for: context).recordRequest()
    }

    func onComplete(_ outcome: ExchangeOutcome, context: RequestContext) {
        let series = series(for: context)
        if !context.wasDispatched { series.recordRequest() }
        let latencyMs = context.responseStartTime.map { Double(($0 - context.startTime).nanoseconds) / 1_000_000 }
        switch outcome {
        case .responded(let status):
            series.recordResponse(status: status, grpcStatus: context.grpcStatus, isGRPC: context.isGRPC,
                                  failed: false, latencyMs: latencyMs)
        case .failed:
            series.recordResponse(status: context.responseStatus?.code, grpcStatus: context.grpcStatus,
                                  isGRPC: context.isGRPC, failed: true, latencyMs: latencyMs)
        }
    }

    private func series(for context: RequestContext) -> HTTPTargetMetrics {
        let route = context.routeName
        // Inbound requests (and outbound ones sent by authority) have no destination service: their
        // series go by route alone. Keying them by an optional `ServiceIdentity` too cost two
        // copies of it and a comparison through its value witnesses per lookup, ~900 instructions.
        guard direction == .outbound, let service = context.upstream?.service else {
            return series.byRoute.withLock { cache in
                cache.value(for: route) {
                    metrics.http(direction: direction, identity: identity, service: nil, route: route)
                }
            }
        }
        let key = SeriesCache.Key(service: service, route: route)
        return series.byKey.withLock { cache in
            cache.value(for: key) {
                metrics.http(direction: direction, identity: identity, service: service, route: route)
            }
        }
    }
}

/// One chain's series, by destination and route.
final class SeriesCache: Sendable {
    struct Key: Hashable {
        var service: ServiceIdentity
        var route: String?
    }

    /// Requests with a destination service.
    let byKey = Mutex(LastUsedCache<Key, HTTPTargetMetrics>())
    /// Requests without one, by route.
    let byRoute = Mutex(LastUsedCache<String?, HTTPTargetMetrics>())
}
