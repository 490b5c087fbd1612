import HTTPTypes
import NIOCore

/// An ordered, immutable list of filters built once from config.
///
/// The proxy (and ``FilterHarness`` in tests) drive it: request callbacks in order,
/// response callbacks in reverse order, stopping at the first filter that answers.
///
/// Callbacks reach each filter where it lies in `filters`, by index. A `for` loop over the array
/// copies every filter out of it and destroys the copy, and so does indexing when the chain
/// itself is address-only (an existential stored inline makes it so): two calls through the
/// filter type's value witnesses, indirect branches the CPU mispredicts, per filter and callback,
/// ~30 pairs per proxied request. Hence the index loops and the boxed connection-level filter.
/// The loops are written out in each callback: a shared walker taking a closure brought the copies
/// back (checked in the release build's disassembly).
public struct FilterChain: Sendable {
    /// Registered names, in chain order.
    public let names: [String]
    /// The request-level filters, in chain order.
    public let filters: [any HTTPFilter]
    /// The connection-level filter (`protocol-detect`), if the chain has one.
    public var connectionFilter: (any ConnectionFilter)? { connectionFilterBox?.filter }
    private let connectionFilterBox: ConnectionFilterBox?
    /// The connection-level filter's registered name.
    public let connectionFilterName: String?

    public init(names: [String], filters: [any HTTPFilter], connectionFilter: (any ConnectionFilter)? = nil,
                connectionFilterName: String? = nil) {
        precondition(names.count == filters.count, "one name per filter")
        self.names = names
        self.filters = filters
        self.connectionFilterBox = connectionFilter.map(ConnectionFilterBox.init)
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
        var index = 0
        while index < filters.count {
            filters[index].onDispatch(target, context: context)
            index += 1
        }
    }

    /// Runs `onRequestBody` in order.
    public func requestBody(_ chunk: inout ByteBuffer, context: RequestContext) -> StreamAction {
        var index = 0
        while index < filters.count {
            if case .respond(let response) = filters[index].onRequestBody(&chunk, context: context) {
                return .respond(response)
            }
            index += 1
        }
        return .continue
    }

    /// Runs `onRequestEnd` in order.
    public func requestEnd(_ trailers: inout HTTPFields?, context: RequestContext) -> StreamAction {
        var index = 0
        while index < filters.count {
            if case .respond(let response) = filters[index].onRequestEnd(&trailers, context: context) {
                return .respond(response)
            }
            index += 1
        }
        return .continue
    }

    /// Runs `onResponseHead` in reverse order. A filter that answers replaces the upstream's
    /// response with its own; the filters before it in chain order are not called for it.
    public func responseHead(_ response: inout HTTPResponse, context: RequestContext) -> StreamAction {
        var index = filters.count
        while index > 0 {
            index -= 1
            if case .respond(let local) = filters[index].onResponseHead(&response, context: context) {
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
        var index = filters.count
        while index > 0 {
            index -= 1
            filters[index].onResponseBody(&chunk, context: context)
        }
        context.recordResponseBody(bytes: chunk.readableBytes)
    }

    /// Runs `onResponseEnd` in reverse order.
    public func responseEnd(_ trailers: inout HTTPFields?, context: RequestContext) {
        var index = filters.count
        while index > 0 {
            index -= 1
            filters[index].onResponseEnd(&trailers, context: context)
        }
        if let trailers { context.recordGRPCStatus(from: trailers) }
    }

    /// Runs `onComplete` on every filter.
    public func complete(_ outcome: ExchangeOutcome, context: RequestContext) {
        var index = filters.count
        while index > 0 {
            index -= 1
            filters[index].onComplete(outcome, context: context)
        }
    }
}

/// The chain's connection-level filter, behind a reference (see ``FilterChain``).
private final class ConnectionFilterBox: Sendable {
    let filter: any ConnectionFilter

    init(_ filter: any ConnectionFilter) {
        self.filter = filter
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
