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
    /// How to retry this request, if the retry filter chose a policy for its route.
    public var retry: RetryDirective?
    /// Scratch space for regex matches, owned by the connection (never shared across threads).
    public let matchScratch: MatchScratch
    /// The response status once known (the final one: informational heads are not recorded).
    public private(set) var responseStatus: HTTPResponse.Status?
    /// When the final response head was sent (time to first byte is this minus ``startTime``).
    public private(set) var responseStartTime: NIODeadline?
    /// Where the proxy sent the request; nil until dispatched, and for requests answered locally.
    public private(set) var upstream: UpstreamTarget?
    /// Whether the request was sent upstream (``upstream`` is set). A flag of its own: comparing
    /// `upstream` with nil copies the target, every string of it, even inside this class.
    public private(set) var wasDispatched = false
    /// The gRPC status the call ended with (trailers, or a trailers-only response), if any.
    public private(set) var grpcStatus: Int?
    /// Response body bytes sent to the client so far.
    public private(set) var responseBodyBytes = 0
    /// The request head as the client sent it (before any filter rewrote it).
    public private(set) var request: HTTPRequest?
    /// Whether the request is a gRPC call (`content-type: application/grpc…`).
    public let isGRPC: Bool

    @usableFromInline var values: [ObjectIdentifier: Any] = [:]

    public init(direction: TrafficDirection, eventLoop: any EventLoop, remoteAddress: SocketAddress?,
                matchScratch: MatchScratch = MatchScratch(), startTime: NIODeadline = .now(), isGRPC: Bool = false) {
        self.matchScratch = matchScratch
        self.isGRPC = isGRPC
        self.direction = direction
        self.eventLoop = eventLoop
        self.remoteAddress = remoteAddress
        self.startTime = startTime
    }

    /// How many per-request values filters have stored (zero: no filter paid for storage).
    public var storedValueCount: Int { values.count }

    /// A filter's own per-request value. Inlinable so it is specialized in the filter's module
    /// (a request with no stored values pays one emptiness check).
    @inlinable
    public subscript<Key: RequestContextKey>(_ key: Key.Type) -> Key.Value? {
        get { values.isEmpty ? nil : values[ObjectIdentifier(key)] as? Key.Value }
        set { values[ObjectIdentifier(key)] = newValue }
    }

    // The proxy records what happened to the request; filters (metrics, tap) read it.

    /// Records the final response status and when it was sent (the chain does this when a
    /// response head passes; the proxy, for responses it generates).
    public func recordResponseStatus(_ status: HTTPResponse.Status, at time: NIODeadline = .now()) {
        responseStatus = status
        if responseStartTime == nil { responseStartTime = time }
    }

    /// Records the request head as received (the chain does this before the first filter runs).
    public func recordRequest(_ head: HTTPRequest) {
        request = head
    }

    /// The matched route's name, read in place (reading `route` copies the whole decision).
    public var routeName: String? { route?.name }

    /// Records where the request was sent.
    public func recordUpstream(_ target: UpstreamTarget) {
        upstream = target
        wasDispatched = true
    }

    /// Records the call's gRPC status from response headers or trailers, if they carry one.
    public func recordGRPCStatus(from fields: HTTPFields) {
        if let value = fields.firstValue(Self.grpcStatusField), let code = Int(value) { grpcStatus = code }
    }

    /// Counts response body bytes sent to the client.
    public func recordResponseBody(bytes: Int) {
        responseBodyBytes += bytes
    }

    private static let grpcStatusField = HTTPField.Name("grpc-status")!
}

extension HTTPFields {
    /// The value of the first field named `name`. Unlike the subscript, repeated fields are not
    /// joined into a new string, so a lookup on the per-request path allocates nothing.
    public func firstValue(_ name: HTTPField.Name) -> String? {
        for field in self where field.name == name { return field.value }
        return nil
    }
}
