import HTTPTypes
import NIOCore
import NIOEmbedded
import WeftFilter
import Yams

/// Drives a filter chain without sockets, the way the proxy does: request callbacks in order,
/// response callbacks in reverse, suspended filters resumed on an embedded event loop.
///
/// ```swift
/// let harness = try FilterHarness(registry: registry, yaml: """
///     - name: header-rewrite
///       config: { request: { set: { x-env: prod } } }
///     """)
/// let result = harness.sendRequest(HTTPRequest(method: .get, scheme: "http", authority: "svc", path: "/"))
/// #expect(result.forwardedRequest?.headerFields[HTTPField.Name("x-env")!] == "prod")
/// ```
public final class FilterHarness {
    public let chain: FilterChain
    public let eventLoop = EmbeddedEventLoop()
    public let direction: TrafficDirection

    public init(chain: FilterChain, direction: TrafficDirection = .outbound) {
        self.chain = chain
        self.direction = direction
    }

    /// A harness over filters built directly.
    public convenience init(filters: [any HTTPFilter], direction: TrafficDirection = .outbound) {
        self.init(chain: FilterChain(names: filters.map { "\(type(of: $0))" }, filters: filters), direction: direction)
    }

    /// A harness over a chain written as in config (a YAML list of `{name, config}`).
    public convenience init(registry: FilterRegistry, yaml: String, direction: TrafficDirection = .outbound,
                            backendNames: Set<String> = []) throws {
        guard case .sequence(let entries)? = try Yams.compose(yaml: yaml) else {
            throw FilterConfigError(field: "", message: "the chain must be a YAML list of {name, config}")
        }
        var specs: [FilterSpec] = []
        for entry in entries {
            guard let name = entry["name"]?.string else {
                throw FilterConfigError(field: "name", message: "is required")
            }
            specs.append(FilterSpec(name: name, config: entry["config"] ?? .mapping(Yams.Node.Mapping([]))))
        }
        let context = FilterBuildContext(direction: direction, backendNames: backendNames)
        self.init(chain: try registry.makeChain(specs, context: context), direction: direction)
    }

    /// What happened to a request.
    public struct RequestResult {
        /// The request as it would go upstream, or nil when a filter answered.
        public var forwardedRequest: HTTPRequest?
        /// Body chunks as they would go upstream.
        public var forwardedBody: [ByteBuffer]
        /// The answer a filter gave instead of forwarding.
        public var localResponse: LocalResponse?
        /// The request's context (route decision, filter state).
        public var context: RequestContext
    }

    /// Runs the request callbacks over `request` and its body. When every head callback continues,
    /// the request is dispatched to `upstream` (by default an endpoint of the route's backend).
    public func sendRequest(_ request: HTTPRequest, body: [String] = [], trailers: HTTPFields? = nil,
                            upstream: UpstreamTarget? = nil, remoteAddress: SocketAddress? = nil) -> RequestResult {
        let isGRPC = request.headerFields[.contentType]?.hasPrefix("application/grpc") ?? false
        let context = RequestContext(direction: direction, eventLoop: eventLoop, remoteAddress: remoteAddress, isGRPC: isGRPC)
        var request = request
        var result = RequestResult(forwardedRequest: nil, forwardedBody: [], localResponse: nil, context: context)
        var start = 0
        headLoop: while true {
            switch chain.requestHead(&request, context: context, from: start) {
            case .proceed:
                break headLoop
            case .respond(let response):
                result.localResponse = response
                return result
            case .suspended(let index, var future):
                while true {
                    eventLoop.run()
                    guard let action = try? future.wait() else {
                        result.localResponse = .proxyError(.internalServerError, "filter '\(chain.names[index])' failed")
                        return result
                    }
                    switch action {
                    case .continue: start = index + 1; continue headLoop
                    case .respond(let response): result.localResponse = response; return result
                    case .suspend(let next): future = next
                    }
                }
            }
        }
        result.forwardedRequest = request
        let target = upstream ?? UpstreamTarget(endpoint: "127.0.0.1:80",
                                                service: context.route.map { ServiceIdentity(service: $0.backend) })
        chain.dispatch(to: target, context: context)
        for text in body {
            var chunk = ByteBuffer(string: text)
            if case .respond(let response) = chain.requestBody(&chunk, context: context) {
                result.localResponse = response
                return result
            }
            result.forwardedBody.append(chunk)
        }
        var trailers = trailers
        if case .respond(let response) = chain.requestEnd(&trailers, context: context) {
            result.localResponse = response
        }
        return result
    }

    /// What the client would receive for an upstream response.
    public struct ResponseResult {
        public var response: HTTPResponse
        public var body: [ByteBuffer]
        public var trailers: HTTPFields?
        /// Set when a filter replaced the upstream's response.
        public var localResponse: LocalResponse?
    }

    /// Runs the response callbacks (reverse order) for the request that produced `context`.
    public func sendResponse(_ response: HTTPResponse, body: [String] = [], trailers: HTTPFields? = nil,
                             for context: RequestContext) -> ResponseResult {
        var response = response
        if case .respond(let local) = chain.responseHead(&response, context: context) {
            chain.complete(.responded(status: local.status.code), context: context)
            return ResponseResult(response: HTTPResponse(status: local.status, headerFields: local.headerFields),
                                  body: [ByteBuffer(string: local.body)], trailers: nil, localResponse: local)
        }
        var chunks: [ByteBuffer] = []
        for text in body {
            var chunk = ByteBuffer(string: text)
            chain.responseBody(&chunk, context: context)
            chunks.append(chunk)
        }
        var trailers = trailers
        chain.responseEnd(&trailers, context: context)
        chain.complete(.responded(status: response.status.code), context: context)
        return ResponseResult(response: response, body: chunks, trailers: trailers, localResponse: nil)
    }

    /// Ends a request the way the proxy does once it is over; for one a filter answered, the
    /// local response's status is recorded first.
    public func complete(_ result: RequestResult, outcome: ExchangeOutcome) {
        if let local = result.localResponse { result.context.recordResponseStatus(local.status) }
        chain.complete(outcome, context: result.context)
    }

    /// Ends the request with a failure (reset, upstream gone), as the proxy would.
    public func fail(_ reason: String, for context: RequestContext) {
        chain.complete(.failed(reason), context: context)
    }
}
