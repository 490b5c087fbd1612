import HTTPTypes
import NIOCore
import WeftRegex

/// Which side of the application a request crosses.
public enum TrafficDirection: String, Sendable, Codable {
    /// Into the local application (the proxy's inbound listener).
    case inbound
    /// From the local application to other services (the proxy's outbound listener).
    case outbound
}

/// Where the route filter decided a request goes. The proxy's terminal router reads it.
public struct RouteDecision: Sendable, Equatable {
    /// The route's name (labels metrics, appears in tap).
    public var name: String
    /// The backend (a service) the request is sent to.
    public var backend: String
    /// Longest wait for the response head; `nil` for no limit.
    public var timeout: TimeAmount?
    /// Named captures of the route's patterns, for filters that rewrite with them.
    public var captures: [String: String]

    public init(name: String, backend: String, timeout: TimeAmount? = nil, captures: [String: String] = [:]) {
        self.name = name
        self.backend = backend
        self.timeout = timeout
        self.captures = captures
    }
}

/// A key for per-request values that a filter keeps in ``RequestContext``.
public protocol RequestContextKey {
    associatedtype Value
}

/// Per-request state shared by the filters of one chain. It lives on the request's event
/// loop and must not leave it.
public final class RequestContext {
    /// Inbound or outbound.
    public let direction: TrafficDirection
    /// The event loop the request runs on; futures returned in ``FilterAction/suspend(_:)`` complete here.
    public let eventLoop: any EventLoop
    /// The client's address, if known.
    public let remoteAddress: SocketAddress?
    /// When the request head arrived.
    public let startTime: NIODeadline
    /// The route chosen for this request, if any route filter chose one.
    public var route: RouteDecision?
    /// Scratch space for regex matches, owned by the connection (never shared across threads).
    public let matchScratch: MatchScratch
    /// The response status once known.
    public internal(set) var responseStatus: HTTPResponse.Status?

    private var values: [ObjectIdentifier: Any] = [:]

    public init(direction: TrafficDirection, eventLoop: any EventLoop, remoteAddress: SocketAddress?, matchScratch: MatchScratch = MatchScratch(), startTime: NIODeadline = .now()) {
        self.matchScratch = matchScratch
        self.direction = direction
        self.eventLoop = eventLoop
        self.remoteAddress = remoteAddress
        self.startTime = startTime
    }

    /// A filter's own per-request value.
    public subscript<Key: RequestContextKey>(_ key: Key.Type) -> Key.Value? {
        get { values[ObjectIdentifier(key)] as? Key.Value }
        set { values[ObjectIdentifier(key)] = newValue }
    }

    /// Records the response status (the chain does this when a response head passes).
    public func recordResponseStatus(_ status: HTTPResponse.Status) {
        responseStatus = status
    }
}
