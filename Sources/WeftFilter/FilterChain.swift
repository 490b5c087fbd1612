import HTTPTypes
import NIOCore

/// An ordered, immutable list of filters built once from config.
///
/// The proxy (and ``FilterHarness`` in tests) drive it: request callbacks in order,
/// response callbacks in reverse order, stopping at the first filter that answers.
public struct FilterChain: Sendable {
    /// Registered names, in chain order.
    public let names: [String]
    /// The request-level filters, in chain order.
    public let filters: [any HTTPFilter]
    /// The connection-level filter (`protocol-detect`), if the chain has one.
    public let connectionFilter: (any ConnectionFilter)?
    /// The connection-level filter's registered name.
    public let connectionFilterName: String?

    public init(names: [String], filters: [any HTTPFilter], connectionFilter: (any ConnectionFilter)? = nil,
                connectionFilterName: String? = nil) {
        precondition(names.count == filters.count, "one name per filter")
        self.names = names
        self.filters = filters
        self.connectionFilter = connectionFilter
        self.connectionFilterName = connectionFilter == nil ? nil : (connectionFilterName ?? "connection")
    }

    /// Every filter's name in config order, the connection-level one first.
    public var allNames: [String] { (connectionFilterName.map { [$0] } ?? []) + names }

    /// Where a head callback pass stopped.
    public enum HeadStep: Sendable {
        /// Every filter continued.
        case proceed
        /// A filter answered.
        case respond(LocalResponse)
        /// A filter suspended: when `future` completes, apply its action for filter `index`
        /// and, if it continues, resume with the filter after it.
        case suspended(index: Int, future: EventLoopFuture<FilterAction>)
    }

    /// Runs `onRequestHead` from filter `start` on.
    public func requestHead(_ request: inout HTTPRequest, context: RequestContext, from start: Int = 0) -> HeadStep {
        if start == 0 { context.recordRequest(request) }
        var index = start
        while index < filters.count {
            switch filters[index].onRequestHead(&request, context: context) {
            case .continue: index += 1
            case .respond(let response): return .respond(response)
            case .suspend(let future): return .suspended(index: index, future: future)
            }
        }
        return .proceed
    }

    /// Records where the request goes and runs `onDispatch` in order.
    public func dispatch(to target: UpstreamTarget, context: RequestContext) {
        context.recordUpstream(target)
        for filter in filters {
            filter.onDispatch(target, context: context)
        }
    }

    /// Runs `onRequestBody` in order.
    public func requestBody(_ chunk: inout ByteBuffer, context: RequestContext) -> StreamAction {
        for filter in filters {
            if case .respond(let response) = filter.onRequestBody(&chunk, context: context) {
                return .respond(response)
            }
        }
        return .continue
    }

    /// Runs `onRequestEnd` in order.
    public func requestEnd(_ trailers: inout HTTPFields?, context: RequestContext) -> StreamAction {
        for filter in filters {
            if case .respond(let response) = filter.onRequestEnd(&trailers, context: context) {
                return .respond(response)
            }
        }
        return .continue
    }

    /// Runs `onResponseHead` in reverse order. A filter that answers replaces the upstream's
    /// response with its own; the filters before it in chain order are not called for it.
    public func responseHead(_ response: inout HTTPResponse, context: RequestContext) -> StreamAction {
        for filter in filters.reversed() {
            if case .respond(let local) = filter.onResponseHead(&response, context: context) {
                context.recordResponseStatus(local.status)
                return .respond(local)
            }
        }
        context.recordResponseStatus(response.status)
        context.recordGRPCStatus(from: response.headerFields)
        return .continue
    }

    /// Runs `onResponseBody` in reverse order.
    public func responseBody(_ chunk: inout ByteBuffer, context: RequestContext) {
        for filter in filters.reversed() {
            filter.onResponseBody(&chunk, context: context)
        }
        context.recordResponseBody(bytes: chunk.readableBytes)
    }

    /// Runs `onResponseEnd` in reverse order.
    public func responseEnd(_ trailers: inout HTTPFields?, context: RequestContext) {
        for filter in filters.reversed() {
            filter.onResponseEnd(&trailers, context: context)
        }
        if let trailers { context.recordGRPCStatus(from: trailers) }
    }

    /// Runs `onComplete` on every filter.
    public func complete(_ outcome: ExchangeOutcome, context: RequestContext) {
        for filter in filters.reversed() {
            filter.onComplete(outcome, context: context)
        }
    }
}

extension LocalResponse {
    /// The response head and body buffer of this local response, with `content-length` set.
    public func makeHead(allocator: ByteBufferAllocator) -> (HTTPResponse, ByteBuffer) {
        var fields = headerFields
        let body = allocator.buffer(string: self.body)
        fields[.contentLength] = String(body.readableBytes)
        return (HTTPResponse(status: status, headerFields: fields), body)
    }
}
