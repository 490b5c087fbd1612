import HTTPTypes
import WeftFilter
import WeftRegex
import WeftRouting

/// Which requests a tap observes: a tree of conditions combined with all/any/not.
public indirect enum TapPredicate: Sendable {
    case all([TapPredicate])
    case any([TapPredicate])
    case not(TapPredicate)
    /// The client's address, `ip:port`.
    case source(StringMatcher)
    case destination(DestinationMatch)
    case method(HTTPRequest.Method)
    /// The path without its query string.
    case path(StringMatcher)
    /// The authority's host, lowercased, without port (`web`, `emoji.emojivoto`).
    case authority(StringMatcher)
    case direction(TrafficDirection)

    /// Matches every request.
    public static let everything = TapPredicate.all([])

    /// Conditions on where a request was sent; every field set must match.
    public struct DestinationMatch: Sendable, Equatable {
        public var service: String?
        public var namespace: String?
        public var workload: WorkloadRef?
        /// The endpoint, `ip:port`.
        public var address: String?

        public init(service: String? = nil, namespace: String? = nil, workload: WorkloadRef? = nil, address: String? = nil) {
            self.service = service
            self.namespace = namespace
            self.workload = workload
            self.address = address
        }

        func matches(_ target: UpstreamTarget?) -> Bool {
            if let address, target?.endpoint != address { return false }
            if let service, target?.service?.service != service { return false }
            if let namespace, target?.service?.namespace != namespace { return false }
            if let workload, target?.service?.workload != workload { return false }
            return true
        }
    }

    /// Whether `request` matches.
    public func matches(_ request: TappedRequest, scratch: MatchScratch) -> Bool {
        switch self {
        case .all(let predicates): return predicates.allSatisfy { $0.matches(request, scratch: scratch) }
        case .any(let predicates): return predicates.contains { $0.matches(request, scratch: scratch) }
        case .not(let predicate): return !predicate.matches(request, scratch: scratch)
        case .source(let matcher): return matcher.matches(request.source[...], scratch: scratch)
        case .destination(let match): return match.matches(request.upstream)
        case .method(let method): return request.view.method == method
        case .path(let matcher): return matcher.matches(request.view.path, scratch: scratch)
        case .authority(let matcher): return matcher.matches(request.view.host, scratch: scratch)
        case .direction(let direction): return request.direction == direction
        }
    }
}

/// What a tap knows about a request when it decides whether to observe it. The request is
/// split once (method, host, path), however many conditions and taps look at it.
public struct TappedRequest {
    public let direction: TrafficDirection
    /// The client's address, `ip:port` (empty when unknown).
    public let source: String
    /// Where the request was sent; nil when the proxy answered it itself.
    public let upstream: UpstreamTarget?
    let view: RequestView

    public init(direction: TrafficDirection, request: HTTPRequest, source: String, upstream: UpstreamTarget?) {
        self.direction = direction
        self.view = RequestView(request)
        self.source = source
        self.upstream = upstream
    }
}
