import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import WeftFilter
import WeftRouting

/// One request in flight: runs the filter chain, picks the upstream, streams both bodies
/// and turns every failure into an answer the client understands.
///
/// Lives on the client connection's event loop, as does its upstream connection (pools are
/// per event loop), so nothing here hops threads.
final class Exchange: UpstreamResponseDelegate {
    private enum Phase {
        /// Running request-head filters (possibly suspended on one).
        case filtering
        /// Waiting for an upstream connection.
        case connecting
        /// Request and response streaming.
        case forwarding
        /// `101 Switching Protocols` sent to the client; waiting for the end of the upstream's
        /// 101 message before both connections switch to relaying bytes.
        case upgrading
        /// Over (answered, failed or upgraded).
        case done
    }

    private unowned let proxy: ProxyHandler
    private let snapshot: ProxySnapshot
    private let chain: FilterChain
    let context: RequestContext
    private var request: HTTPRequest?
    private let clientVersion: HTTPVersion
    private let clientKeepAlive: Bool
    private let isUpgrade: Bool
    private let upgradeProtocol: String?
    private let requestChunked: Bool
    private let requestMethod: HTTPMethod

    private var phase: Phase = .filtering
    private var endpoint: ListenAddress?
    private var upstream: UpstreamConnection?
    private var upstreamHead: HTTPRequestHead?
    /// Request parts received before the upstream connection was ready.
    private var buffered: [HTTPClientRequestPart] = []
    private(set) var requestEnded = false
    private var requestBodyForwarded = false
    private var responseStarted = false
    private var upstreamKeepAlive = true
    private var downstreamKeepAlive = true
    private var retriedStaleConnection = false
    private var timeout: Scheduled<Void>?
    private var logger: Logger { proxy.logger }

    init(proxy: ProxyHandler, snapshot: ProxySnapshot, head: HTTPRequestHead, eventLoop: any EventLoop, remoteAddress: SocketAddress?) {
        self.proxy = proxy
        self.snapshot = snapshot
        self.chain = snapshot.chain(for: proxy.direction)
        self.context = RequestContext(direction: proxy.direction, eventLoop: eventLoop, remoteAddress: remoteAddress,
                                      matchScratch: proxy.scratch)
        self.clientVersion = head.version
        self.clientKeepAlive = head.isKeepAlive
        self.requestMethod = head.method
        let upgrade = head.headers.first(name: "upgrade")
        let connectionTokens = head.headers[canonicalForm: "connection"].map { $0.lowercased() }
        self.isUpgrade = upgrade != nil && connectionTokens.contains("upgrade")
        self.upgradeProtocol = upgrade
        self.requestChunked = head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        self.request = Self.makeRequest(head)
    }

    /// Where the exchange holds client reads: while filters or the upstream connect are pending,
    /// and while the upstream cannot take more bytes.
    var holdsClientReads: Bool {
        switch phase {
        case .filtering, .connecting: return true
        case .forwarding: return !(upstream?.handler.isWritable ?? true)
        case .upgrading: return true
        case .done: return false
        }
    }

    // MARK: Request

    func start() {
        guard request != nil else {
            respondLocally(.proxyError(.badRequest, "malformed request: unsupported method or request target"))
            return
        }
        if requestMethod == .CONNECT {
            respondLocally(.proxyError(.methodNotAllowed, "CONNECT is not supported by this proxy"))
            return
        }
        HopByHop.strip(&request!.headerFields)
        runRequestFilters(from: 0)
    }

    private func runRequestFilters(from index: Int) {
        switch chain.requestHead(&request!, context: context, from: index) {
        case .proceed:
            dispatch()
        case .respond(let response):
            respondLocally(response)
        case .suspended(let index, let future):
            awaitFilter(index, future)
        }
    }

    private func awaitFilter(_ index: Int, _ future: EventLoopFuture<FilterAction>) {
        future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            guard self.phase == .filtering else { return }
            switch result {
            case .success(.continue):
                self.runRequestFilters(from: index + 1)
            case .success(.respond(let response)):
                self.respondLocally(response)
            case .success(.suspend(let next)):
                self.awaitFilter(index, next)
            case .failure(let error):
                self.respondLocally(.proxyError(.internalServerError, "filter '\(self.chain.names[index])' failed: \(error)"))
            }
        }
    }

    func requestBody(_ body: ByteBuffer) {
        guard phase != .done else { return }
        var chunk = body
        if case .respond(let response) = chain.requestBody(&chunk, context: context) {
            respondLocally(response)
            return
        }
        send(.body(.byteBuffer(chunk)))
    }

    func requestEnd(_ trailers: HTTPHeaders?) {
        requestEnded = true
        guard phase != .done else { return }
        var fields = trailers.map { HTTPFields($0, splitCookie: false) }
        if case .respond(let response) = chain.requestEnd(&fields, context: context) {
            respondLocally(response)
            return
        }
        send(.end(fields.map(HTTPHeaders.init)))
        flushUpstream()
    }

    private func send(_ part: HTTPClientRequestPart) {
        if case .body = part { requestBodyForwarded = true }
        if phase == .forwarding, let upstream {
            upstream.handler.write(part)
        } else {
            buffered.append(part)
        }
    }

    func flushUpstream() {
        if phase == .forwarding { upstream?.handler.flush() }
    }

    // MARK: Routing to an upstream

    private func dispatch() {
        guard let request else { return }
        phase = .connecting
        let backend: Backend?
        if let route = context.route {
            backend = snapshot.backends[route.backend]
        } else if proxy.direction == .inbound {
            backend = snapshot.backends[ProxySnapshot.appBackendName]
        } else {
            guard let authority = request.authority, !authority.isEmpty else {
                respondLocally(.proxyError(.badRequest, "request has no Host header, so the proxy cannot tell where it goes"))
                return
            }
            let host = String(RequestView.host(of: authority))
            if host != ProxySnapshot.appBackendName, let named = snapshot.backends[host] {
                backend = named
            } else {
                let target = ListenAddress(parsing: authority) ?? ListenAddress(host: host, port: 80)
                if target.port == snapshot.config.outbound.address.port && Self.isLoopbackOrSelf(target.host, snapshot.config.outbound.address.host) {
                    respondLocally(.proxyError(HTTPResponse.Status(code: 508, reasonPhrase: "Loop Detected"), "request to \(authority) is addressed to the proxy's own outbound listener"))
                    return
                }
                startUpstream(endpoint: target, backendName: authority)
                return
            }
        }
        guard let backend else {
            respondLocally(.proxyError(.serviceUnavailable, "no backend for this request"))
            return
        }
        guard let endpoint = backend.pickEndpoint() else {
            respondLocally(.proxyError(.serviceUnavailable, "backend '\(backend.name)' has no endpoints"))
            return
        }
        startUpstream(endpoint: endpoint, backendName: backend.name)
    }

    private func startUpstream(endpoint: ListenAddress, backendName: String) {
        guard let request else { return }
        self.endpoint = endpoint
        do {
            var head = try HTTPRequestHead(request)
            if isUpgrade, let upgradeProtocol {
                head.headers.add(name: "connection", value: "upgrade")
                head.headers.add(name: "upgrade", value: upgradeProtocol)
            }
            if requestChunked && !head.headers.contains(name: "content-length") {
                head.headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
            }
            upstreamHead = head
        } catch {
            respondLocally(.proxyError(.badRequest, "malformed request: \(error)"))
            return
        }
        if let limit = context.route?.timeout {
            let routeName = context.route?.name ?? ""
            timeout = context.eventLoop.assumeIsolated().scheduleTask(in: limit) { [weak self] in
                guard let self, !self.responseStarted, self.phase == .connecting || self.phase == .forwarding else { return }
                self.respondLocally(.proxyError(.gatewayTimeout,
                    "upstream \(endpoint) did not respond within \(ConfigDuration(nanoseconds: limit.nanoseconds)) (route '\(routeName)')"))
            }
        }
        connect(forceNew: false)
    }

    private func connect(forceNew: Bool) {
        guard let endpoint else { return }
        let pool = proxy.pools.pool(for: context.eventLoop)
        let settings = snapshot.config.upstream
        pool.acquire(endpoint, settings: settings, forceNew: forceNew).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let connection):
                guard self.phase == .connecting else {
                    pool.release(connection, settings: settings)
                    return
                }
                self.attach(connection)
            case .failure(let error):
                guard self.phase == .connecting else { return }
                let failure = error as? ConnectFailure
                self.respondLocally(.proxyError(failure?.timedOut == true ? .gatewayTimeout : .badGateway,
                                                failure?.description ?? "connect to \(endpoint) failed: \(error)"))
            }
        }
    }

    private func attach(_ connection: UpstreamConnection) {
        upstream = connection
        connection.handler.delegate = self
        phase = .forwarding
        connection.handler.write(.head(upstreamHead!))
        for part in buffered {
            connection.handler.write(part)
        }
        buffered.removeAll()
        connection.handler.flush()
        proxy.resumeReadsIfPossible()
    }

    // MARK: Response (UpstreamResponseDelegate)

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        guard phase == .forwarding else { return }
        if (100..<200).contains(head.status.code) {
            if head.status == .switchingProtocols {
                if isUpgrade {
                    switchProtocols(head)
                } else {
                    failBeforeResponse(.badGateway, "upstream \(endpointText) switched protocols without being asked")
                }
                return
            }
            // Informational (100 Continue, 103 Early Hints): pass it on, the final head follows.
            var informational = head
            informational.version = .http1_1
            proxy.writeResponse(.head(informational))
            proxy.flush()
            return
        }
        timeout?.cancel()
        upstreamKeepAlive = head.isKeepAlive
        guard var response = try? HTTPResponse(head) else {
            failBeforeResponse(.badGateway, "upstream \(endpointText) sent an invalid status \(head.status.code)")
            return
        }
        HopByHop.strip(&response.headerFields)
        if case .respond(let local) = chain.responseHead(&response, context: context) {
            dropUpstream()
            respondLocally(local)
            return
        }
        var out = HTTPResponseHead(response)
        let bodyless = requestMethod == .HEAD || head.status.code == 204 || head.status.code == 304
        downstreamKeepAlive = clientKeepAlive
        if clientVersion.minor == 0 {
            out.version = .http1_0
            // An HTTP/1.0 client cannot read chunked framing: without a length the body ends at close.
            if !bodyless && !out.headers.contains(name: "content-length") { downstreamKeepAlive = false }
            if downstreamKeepAlive { out.headers.add(name: "connection", value: "keep-alive") }
        }
        if !downstreamKeepAlive && clientVersion.minor >= 1 {
            out.headers.add(name: "connection", value: "close")
        }
        responseStarted = true
        proxy.writeResponse(.head(out))
    }

    func upstreamResponseBody(_ body: ByteBuffer) {
        guard phase == .forwarding, responseStarted else { return }
        var chunk = body
        chain.responseBody(&chunk, context: context)
        proxy.writeResponse(.body(.byteBuffer(chunk)))
        if !proxy.isWritable {
            upstream?.handler.pauseReads()
        }
    }

    func upstreamReadComplete() {
        if responseStarted { proxy.flush() }
    }

    func upstreamResponseEnd(_ trailers: HTTPHeaders?) {
        if phase == .upgrading {
            completeUpgrade()
            return
        }
        guard phase == .forwarding, responseStarted, let connection = upstream else { return }
        var fields = trailers.map { HTTPFields($0, splitCookie: false) }
        chain.responseEnd(&fields, context: context)
        upstream = nil
        if upstreamKeepAlive && requestEnded {
            proxy.pools.pool(for: context.eventLoop).release(connection, settings: snapshot.config.upstream)
        } else {
            connection.close()
        }
        finish(.responded(status: context.responseStatus?.code ?? 0))
        proxy.completeResponse(fields.map(HTTPHeaders.init), for: self, keepAlive: downstreamKeepAlive)
    }

    func upstreamFailed(_ error: UpstreamFailure) {
        if phase == .upgrading {
            upstream = nil
            finish(.failed("upstream \(endpointText) closed the connection while switching protocols"))
            proxy.abortConnection(for: self)
            return
        }
        guard phase == .forwarding, let connection = upstream else { return }
        upstream = nil
        if !responseStarted {
            // A pooled connection the upstream closed while idle: safe to resend a body-less request once.
            if connection.reused && !requestBodyForwarded && requestEnded && !retriedStaleConnection {
                retriedStaleConnection = true
                phase = .connecting
                buffered = [.end(nil)]
                connect(forceNew: true)
                return
            }
            switch error {
            case .closed:
                respondLocally(.proxyError(.badGateway, "upstream \(endpointText) closed the connection before responding"))
            case .error(let cause):
                respondLocally(.proxyError(.badGateway, "upstream \(endpointText) failed before responding: \(cause)"))
            }
            return
        }
        logger.debug("upstream failed mid-response; closing the client connection", metadata: [
            "upstream": "\(endpointText)", "error": "\(error)",
        ])
        finish(.failed("upstream \(endpointText) closed the connection mid-response"))
        proxy.abortConnection(for: self)
    }

    func upstreamWritabilityChanged() {
        proxy.resumeReadsIfPossible()
    }

    /// The client can take more response bytes: read from the upstream again.
    func clientBecameWritable() {
        upstream?.handler.resumeReads()
    }

    private func switchProtocols(_ head: HTTPResponseHead) {
        timeout?.cancel()
        var out = head
        out.version = .http1_1
        context.recordResponseStatus(.switchingProtocols)
        responseStarted = true
        phase = .upgrading
        proxy.writeResponse(.head(out))
        proxy.flush()
    }

    /// The upstream's 101 message is complete: hand both connections to the byte relay. Done on
    /// the next event loop tick, once the HTTP decoders have returned from the current read.
    private func completeUpgrade() {
        guard let connection = upstream else { return }
        upstream = nil
        connection.handler.delegate = nil
        finish(.responded(status: 101))
        let proxy = self.proxy
        context.eventLoop.assumeIsolated().execute {
            proxy.spliceUpgraded(with: connection)
        }
    }

    // MARK: Local answers and failures

    /// Answers with a response generated here (a filter's, or a proxy error).
    private func respondLocally(_ response: LocalResponse) {
        guard !responseStarted else {
            finish(.failed(response.body))
            proxy.abortConnection(for: self)
            return
        }
        dropUpstream()
        if response.headerFields[.weftProxyError] != nil {
            logger.debug("proxy error", metadata: [
                "status": "\(response.status.code)", "error": "\(response.headerFields[.weftProxyError]!)",
                "direction": "\(context.direction.rawValue)",
            ])
        }
        let (head, body) = response.makeHead(allocator: ByteBufferAllocator())
        var out = HTTPResponseHead(head)
        let keepAlive = clientKeepAlive && requestEnded && !isUpgrade
        if clientVersion.minor == 0 {
            out.version = .http1_0
            if keepAlive { out.headers.add(name: "connection", value: "keep-alive") }
        } else if !keepAlive {
            out.headers.add(name: "connection", value: "close")
        }
        context.recordResponseStatus(response.status)
        responseStarted = true
        proxy.writeResponse(.head(out))
        if requestMethod != .HEAD {
            proxy.writeResponse(.body(.byteBuffer(body)))
        }
        finish(.responded(status: response.status.code))
        proxy.completeResponse(nil, for: self, keepAlive: keepAlive)
    }

    private func failBeforeResponse(_ status: HTTPResponse.Status, _ message: String) {
        dropUpstream()
        respondLocally(.proxyError(status, message))
    }

    /// The client went away or its connection failed.
    func abort(_ reason: String) {
        guard phase != .done else { return }
        dropUpstream()
        finish(.failed(reason))
    }

    private func dropUpstream() {
        if let upstream {
            self.upstream = nil
            upstream.close()
        }
    }

    private func finish(_ outcome: ExchangeOutcome) {
        guard phase != .done else { return }
        phase = .done
        timeout?.cancel()
        timeout = nil
        buffered.removeAll()
        chain.complete(outcome, context: context)
    }

    private var endpointText: String { endpoint.map { "\($0)" } ?? "?" }

    private static func isLoopbackOrSelf(_ host: String, _ listenHost: String) -> Bool {
        host == listenHost || host == "localhost" || host.hasPrefix("127.") || host == "::1" || listenHost == "0.0.0.0"
    }

    // MARK: Conversion

    /// The request in swift-http-types' model. Origin-form targets (`/path?q`) stay as they are;
    /// absolute-form (`http://host/path`) is split into authority and path.
    static func makeRequest(_ head: HTTPRequestHead) -> HTTPRequest? {
        guard let method = try? HTTPRequest.Method(head.method) else { return nil }
        var authority = head.headers.first(name: "host")
        var path = head.uri
        var scheme = "http"
        if !head.uri.hasPrefix("/") && head.uri != "*" {
            if let schemeEnd = head.uri.range(of: "://") {
                scheme = String(head.uri[..<schemeEnd.lowerBound]).lowercased()
                let rest = head.uri[schemeEnd.upperBound...]
                let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
                authority = String(rest[..<slash])
                path = slash == rest.endIndex ? "/" : String(rest[slash...])
                if path.hasPrefix("?") { path = "/" + path }
            } else {
                return nil
            }
        }
        return HTTPRequest(method: method, scheme: scheme, authority: authority, path: path,
                           headerFields: HTTPFields(head.headers, splitCookie: false))
    }
}
