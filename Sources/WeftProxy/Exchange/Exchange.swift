import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import WeftFilter
import WeftRouting

/// One request in flight, whatever the HTTP version: runs the filter chain, picks the upstream,
/// streams both bodies, and turns every failure into an answer the client understands
/// (a `weft-proxy-error` response, or a trailers-only gRPC status for gRPC calls).
///
/// Lives on the client connection's event loop, as does its upstream (pools are per event loop),
/// so nothing here hops threads.
final class Exchange: UpstreamResponseDelegate {
    private enum Phase {
        /// Running request-head filters (possibly suspended on one).
        case filtering
        /// Waiting for an upstream connection or stream.
        case connecting
        /// Request and response streaming.
        case forwarding
        /// `101 Switching Protocols` sent; waiting for the end of the upstream's 101 message.
        case upgrading
        /// Over (answered, failed or upgraded).
        case done
    }

    /// Strong, as is the downstream's reference to its exchange: the downstream drops that one
    /// when the exchange ends (answered, aborted, upgraded) or its client goes away, and a callback
    /// still due (a connect completing, a filter resuming) finds the exchange done.
    ///
    /// No object on the request path is referenced weakly: the first weak reference to an object
    /// gives it a side table, and from then on every retain and release of it (NIO's of a
    /// handler or channel, several per request, included) takes the runtime's slow path through
    /// that table. Cycles are broken where an exchange, a stream or a connection ends instead.
    private let downstream: any Downstream
    private let listener: ListenerContext
    private let snapshot: ProxySnapshot
    private let chain: FilterChain
    let context: RequestContext
    private var request: HTTPRequest
    private let framing: HTTP1Framing
    private let protocolVersion: UpstreamProtocol
    /// A gRPC call: proxy failures are answered with a gRPC status, not an HTTP error.
    let isGRPC: Bool
    private let grpcDeadline: TimeAmount?

    private var phase: Phase = .filtering
    private var endpoint: ListenAddress?
    private var upstream: (any UpstreamStream)?
    /// Request parts received before the upstream was ready.
    private var buffered: [HTTPRequestPart] = []
    private(set) var requestEnded = false
    private var requestBodyForwarded = false
    private(set) var responseStarted = false
    private var retriedStaleConnection = false
    private var timeout: Scheduled<Void>?

    // Retries, when the retry filter gave this request's route a policy.
    private var retry: RetryDirective?
    private var backend: Backend?
    /// Body parts sent so far, kept for resending; nil once the body outgrew the policy's bound.
    private var kept: [HTTPRequestPart]?
    private var keptBytes = 0
    private var retries = 0
    private var triedEndpoints: [ListenAddress] = []
    private var tryTimer: Scheduled<Void>?

    // The balancer's view of the try in flight: which endpoint, since when.
    private var pick: Backend.Pick?
    private var tryOpen = false
    private var tryStarted = NIODeadline.now()

    /// What went wrong with one try, as a retry policy names it.
    private enum TryFailure {
        case connectFailure
        case reset
        case perTryTimeout
        /// `drainable`: an HTTP/1.1 response small enough to read out and keep the connection.
        case response(status: Int, grpcStatus: Int?, drainable: Bool)
    }

    /// Responses up to this size are read out after a failed try, to keep the connection.
    private static let maxDrainedBody = 65_536
    private var logger: Logger { listener.logger }

    init(downstream: any Downstream, request: HTTPRequest, framing: HTTP1Framing, protocolVersion: UpstreamProtocol,
         eventLoop: any EventLoop) {
        self.downstream = downstream
        self.listener = downstream.listener
        let snapshot = downstream.listener.store.current
        self.snapshot = snapshot
        self.chain = snapshot.chain(for: downstream.listener.direction)
        let isGRPC = request.headerFields.firstValue(.contentType).map(GRPC.isGRPCContentType) ?? false
        self.context = RequestContext(direction: downstream.listener.direction, eventLoop: eventLoop,
                                      remoteAddress: downstream.remoteAddress, matchScratch: downstream.scratch, isGRPC: isGRPC)
        self.request = request
        self.framing = framing
        self.protocolVersion = protocolVersion
        self.isGRPC = isGRPC
        self.grpcDeadline = isGRPC ? request.headerFields.firstValue(GRPC.timeoutField).flatMap(GRPC.parseTimeout) : nil
    }

    /// The exchange holds client reads while filters or the upstream connect are pending, and
    /// while the upstream cannot take more bytes.
    var holdsClientReads: Bool {
        switch phase {
        case .filtering, .connecting, .upgrading: return true
        case .forwarding: return !(upstream?.isWritable ?? true)
        case .done: return false
        }
    }

    // MARK: Request

    func start() {
        if request.method == .connect {
            respondLocally(.proxyError(.methodNotAllowed, "CONNECT is not supported by this proxy"))
            return
        }
        HopByHop.strip(&request.headerFields)
        runRequestFilters(from: 0)
    }

    private func runRequestFilters(from index: Int) {
        switch chain.requestHead(&request, context: context, from: index) {
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
        requestBodyForwarded = true
        send(.body(chunk))
    }

    func requestEnd(_ trailers: HTTPFields?) {
        requestEnded = true
        guard phase != .done else { return }
        var trailers = trailers
        if case .respond(let response) = chain.requestEnd(&trailers, context: context) {
            respondLocally(response)
            return
        }
        send(.end(trailers))
        flushUpstream()
    }

    private func send(_ part: HTTPRequestPart) {
        if kept != nil { keep(part) }
        guard phase == .forwarding, let upstream else {
            buffered.append(part)
            return
        }
        write(part, to: upstream)
    }

    private func write(_ part: HTTPRequestPart, to upstream: any UpstreamStream) {
        switch part {
        case .head(let head): upstream.writeHead(head, framing: framing)
        case .body(let body): upstream.writeBody(body)
        case .end(let trailers): upstream.writeEnd(trailers)
        }
    }

    /// Keeps a part for resending, or gives retries up when the body outgrows the bound.
    private func keep(_ part: HTTPRequestPart) {
        if case .body(let body) = part { keptBytes += body.readableBytes }
        if keptBytes > (retry?.maxBufferedBody ?? 0) {
            kept = nil
            return
        }
        kept?.append(part)
    }

    func flushUpstream() {
        if phase == .forwarding { upstream?.flush() }
    }

    // MARK: Routing to an upstream

    private func dispatch() {
        phase = .connecting
        let backend: Backend?
        if let route = context.route {
            backend = snapshot.backends[route.backend]
        } else if context.direction == .inbound {
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
                let own = snapshot.config.outbound.address
                if target.port == own.port && Self.isLoopbackOrSelf(target.host, own.host) {
                    respondLocally(.proxyError(HTTPResponse.Status(code: 508, reasonPhrase: "Loop Detected"),
                                               "request to \(authority) is addressed to the proxy's own outbound listener"))
                    return
                }
                startUpstream(endpoint: target, text: target.description, service: nil)
                return
            }
        }
        guard let backend else {
            respondLocally(.proxyError(.serviceUnavailable, "no backend for this request"))
            return
        }
        switch backend.pick() {
        case .failure(.none):
            respondLocally(.proxyError(.serviceUnavailable, "backend '\(backend.name)' has no endpoints"))
        case .failure(.allTripped):
            respondLocally(.proxyError(.serviceUnavailable, Self.allTrippedMessage(backend)))
        case .success(let chosen):
            self.backend = backend
            pick = chosen
            startUpstream(endpoint: chosen.address, text: chosen.state.addressText, service: backend.service)
        }
    }

    private func startUpstream(endpoint: ListenAddress, text: String, service: ServiceIdentity?) {
        self.endpoint = endpoint
        chain.dispatch(to: UpstreamTarget(endpoint: text, service: service), context: context)
        if let directive = context.retry {
            retry = directive
            // What arrived while the filters ran is all of the body so far.
            kept = []
            for part in buffered { keep(part) }
        }
        let routeTimeout = context.route?.timeout
        let limit: TimeAmount? = switch (routeTimeout, grpcDeadline) {
        case (let route?, let deadline?): min(route, deadline)
        case (let route?, nil): route
        case (nil, let deadline?): deadline
        case (nil, nil): nil
        }
        if let limit {
            let isDeadline = grpcDeadline != nil && limit == grpcDeadline
            // Timers hold the exchange until they fire or `finish` cancels them.
            timeout = context.eventLoop.assumeIsolated().scheduleTask(in: limit) {
                self.timedOut(after: limit, grpcDeadline: isDeadline)
            }
        }
        connect(forceNew: false)
    }

    private func timedOut(after limit: TimeAmount, grpcDeadline: Bool) {
        guard phase == .connecting || phase == .forwarding else { return }
        let waited = ConfigDuration(nanoseconds: limit.nanoseconds)
        if responseStarted {
            // Only a gRPC deadline bounds a response that has started: end the call with its status.
            guard grpcDeadline else { return }
            upstream?.cancel()
            upstream = nil
            var trailers = HTTPFields()
            trailers[GRPC.statusField] = String(GRPC.Status.deadlineExceeded.rawValue)
            trailers[GRPC.messageField] = "deadline of \(waited) exceeded in the proxy"
            context.recordGRPCStatus(from: trailers)
            finish(.failed("deadline of \(waited) exceeded"))
            downstream.finishResponse(trailers, for: self)
            return
        }
        // The endpoint did not answer in time: a failure for its accrual (a client's own short
        // gRPC deadline says nothing about the endpoint).
        endTry(grpcDeadline ? .abandoned : .failure)
        let message = grpcDeadline
            ? "gRPC deadline of \(waited) exceeded waiting for upstream \(endpointText)"
            : "upstream \(endpointText) did not respond within \(waited) (route '\(context.route?.name ?? "")')"
        respondLocally(.proxyError(.gatewayTimeout, message))
    }

    private func connect(forceNew: Bool) {
        guard let endpoint else { return }
        if let pick, !tryOpen {
            pick.state.begin(probe: pick.probe)
            tryOpen = true
            tryStarted = .now()
        }
        if let perTry = retry?.perTryTimeout {
            tryTimer?.cancel()
            tryTimer = context.eventLoop.assumeIsolated().scheduleTask(in: perTry) {
                self.tryTimedOut(after: perTry)
            }
        }
        let pool = listener.pools.pool(for: context.eventLoop)
        switch pool.acquire(endpoint, protocol: protocolVersion, settings: snapshot.config.upstream, metrics: listener.upstreamTCP,
                            forceNew: forceNew) {
        case .ready(let stream):
            attach(stream)
        case .pending(let future):
            future.whenComplete { result in
                switch result {
                case .success(let stream):
                    guard self.phase == .connecting else {
                        stream.finished(requestComplete: false)
                        return
                    }
                    self.attach(stream)
                case .failure(let error):
                    guard self.phase == .connecting else { return }
                    self.endTry(.failure)
                    if self.retryIfAllowed(after: .connectFailure) { return }
                    let failure = error as? ConnectFailure
                    self.respondLocally(.proxyError(failure?.timedOut == true ? .gatewayTimeout : .badGateway,
                                                    failure?.description ?? "connect to \(endpoint) failed: \(error)"))
                }
            }
        }
    }

    private func attach(_ stream: any UpstreamStream) {
        upstream = stream
        stream.delegate = self
        phase = .forwarding
        stream.writeHead(request, framing: framing)
        for part in buffered {
            write(part, to: stream)
        }
        buffered.removeAll()
        stream.flush()
        downstream.resumeReadsIfPossible()
    }

    // MARK: Response (UpstreamResponseDelegate)

    func upstreamResponseHead(_ head: consuming HTTPResponse) {
        guard phase == .forwarding else { return }
        // Read once: swift-http-types parses the status from its `:status` field on every read.
        let status = head.status
        if status.kind == .informational {
            if status == .switchingProtocols {
                if framing.upgrade != nil, upstream is HTTP1UpstreamConnection {
                    switchProtocols(head)
                } else {
                    respondLocally(.proxyError(.badGateway, "upstream \(endpointText) switched protocols without being asked"))
                }
                return
            }
            // 100 Continue, 103 Early Hints: pass on; the final head follows.
            downstream.writeResponseHead(head, for: self)
            downstream.flush()
            return
        }
        tryTimer?.cancel()
        tryTimer = nil
        endTry(status.code >= 500 ? .failure : .success(latency: .now() - tryStarted))
        if retry != nil,
           retryIfAllowed(after: .response(status: status.code, grpcStatus: head.headerFields.firstValue(GRPC.statusField).flatMap { Int($0) },
                                           drainable: (head.headerFields.firstValue(.contentLength).flatMap { Int($0) } ?? .max) <= Self.maxDrainedBody)) {
            return
        }
        if grpcDeadline == nil || context.route?.timeout != nil { timeout?.cancel() }
        var response = consume head  // owned: stripping hop-by-hop fields copies nothing
        HopByHop.strip(&response.headerFields)
        if case .respond(let local) = chain.responseHead(&response, context: context) {
            dropUpstream()
            respondLocally(local)
            return
        }
        responseStarted = true
        downstream.writeResponseHead(response, for: self)
    }

    func upstreamResponseBody(_ body: ByteBuffer) {
        guard phase == .forwarding, responseStarted else { return }
        var chunk = body
        chain.responseBody(&chunk, context: context)
        downstream.writeResponseBody(chunk)
        if !downstream.isWritable {
            upstream?.pauseReads()
        }
    }

    func upstreamReadComplete() {
        if responseStarted { downstream.flush() }
    }

    func upstreamResponseEnd(_ trailers: HTTPFields?) {
        if phase == .upgrading {
            completeUpgrade()
            return
        }
        guard phase == .forwarding, responseStarted, let stream = upstream else { return }
        var trailers = trailers
        chain.responseEnd(&trailers, context: context)
        upstream = nil
        stream.delegate = nil
        stream.finished(requestComplete: requestEnded)
        finish(.responded(status: context.responseStatus?.code ?? 0))
        downstream.finishResponse(trailers, for: self)
    }

    func upstreamFailed(_ error: UpstreamFailure) {
        guard let stream = upstream else { return }
        upstream = nil
        if phase == .upgrading {
            finish(.failed("upstream \(endpointText) \(error) while switching protocols"))
            downstream.abort(for: self)
            return
        }
        guard phase == .forwarding else { return }
        if !responseStarted {
            // A pooled connection the upstream closed while idle: safe to resend a body-less request once.
            if stream.wasReused && !error.isMalformedAnswer && !requestBodyForwarded && requestEnded && !retriedStaleConnection {
                retriedStaleConnection = true
                phase = .connecting
                buffered = [.end(nil)]
                connect(forceNew: true)
                return
            }
            endTry(.failure)
            if retryIfAllowed(after: .reset) { return }
            respondLocally(.proxyError(.badGateway, "upstream \(endpointText) \(error)\(error.isProtocolMismatch || error.isMalformedAnswer ? "" : " before responding")"))
            return
        }
        logger.debug("upstream failed mid-response", metadata: ["upstream": "\(endpointText)", "error": "\(error)"])
        finish(.failed("upstream \(endpointText) \(error) mid-response"))
        downstream.abort(for: self)
    }

    func upstreamWritabilityChanged() {
        downstream.resumeReadsIfPossible()
    }

    /// The client can take more response bytes: read from the upstream again.
    func clientBecameWritable() {
        upstream?.resumeReads()
    }

    private func switchProtocols(_ head: HTTPResponse) {
        timeout?.cancel()
        context.recordResponseStatus(.switchingProtocols)
        responseStarted = true
        phase = .upgrading
        downstream.writeResponseHead(head, for: self)
        downstream.flush()
    }

    /// The upstream's 101 message is complete: hand both connections to the byte relay, on the
    /// next event loop tick, once the HTTP decoders have returned from the current read.
    private func completeUpgrade() {
        guard let connection = upstream as? HTTP1UpstreamConnection else { return }
        upstream = nil
        connection.delegate = nil
        finish(.responded(status: 101))
        context.eventLoop.assumeIsolated().execute { [downstream] in
            downstream.switchProtocols(to: connection)
        }
    }

    // MARK: Retries

    /// Sends the request again if its policy covers `failure`, tries remain, the whole body was
    /// kept, nothing was sent to the client yet, and the route's budget allows; whether it did.
    private func retryIfAllowed(after failure: TryFailure) -> Bool {
        guard let retry, let kept, !responseStarted, retries < retry.maxRetries else { return false }
        let covered = switch failure {
        case .connectFailure: retry.conditions.connectFailure
        case .reset: retry.conditions.reset
        case .perTryTimeout: retry.conditions.perTryTimeout
        case .response(let status, let grpcStatus, _): retry.conditions.retries(status: status, grpcStatus: grpcStatus)
        }
        guard covered else { return false }
        guard retry.budget.tryWithdraw() else {
            retry.observer?.budgetExhausted()
            return false
        }
        retries += 1
        retry.observer?.retried()
        tryTimer?.cancel()
        tryTimer = nil
        if case .response(_, _, drainable: true) = failure, let connection = upstream as? HTTP1UpstreamConnection {
            upstream = nil
            ResponseDrainer.drain(connection, requestComplete: requestEnded)
        } else {
            dropUpstream()
        }
        if let endpoint { triedEndpoints.append(endpoint) }
        phase = .connecting
        buffered = kept
        context.eventLoop.assumeIsolated().scheduleTask(in: retry.backoff(beforeRetry: retries)) {
            self.sendAgain()
        }
        return true
    }

    /// The back-off is over: pick an endpoint (another one when the backend has several) and resend.
    private func sendAgain() {
        guard phase == .connecting else { return }
        if let backend {
            switch backend.pick(avoiding: triedEndpoints) {
            case .success(let chosen):
                pick = chosen
                endpoint = chosen.address
                context.recordUpstream(UpstreamTarget(endpoint: chosen.state.addressText, service: context.upstream?.service))
            case .failure:
                respondLocally(.proxyError(.serviceUnavailable, Self.allTrippedMessage(backend)))
                return
            }
        }
        connect(forceNew: false)
    }

    private func tryTimedOut(after limit: TimeAmount) {
        guard phase == .connecting || phase == .forwarding, !responseStarted else { return }
        endTry(.failure)
        if retryIfAllowed(after: .perTryTimeout) { return }
        let waited = ConfigDuration(nanoseconds: limit.nanoseconds)
        respondLocally(.proxyError(.gatewayTimeout,
                                   "upstream \(endpointText) did not respond within the per-try timeout of \(waited) (after \(retries + 1) tries)"))
    }

    /// Tells the balancer how the try on its endpoint went (once per try).
    private func endTry(_ outcome: EndpointState.Outcome) {
        guard let pick, tryOpen else { return }
        tryOpen = false
        pick.state.end(outcome, policy: snapshot.failureAccrual)
    }

    private static func allTrippedMessage(_ backend: Backend) -> String {
        "every endpoint of backend '\(backend.name)' is failing; requests resume when a probe succeeds"
    }

    // MARK: Local answers and failures

    /// Answers with a response generated here (a filter's, or a proxy error).
    private func respondLocally(_ local: LocalResponse) {
        guard !responseStarted else {
            finish(.failed(local.body))
            downstream.abort(for: self)
            return
        }
        dropUpstream()
        if let error = local.headerFields[.weftProxyError] {
            logger.debug("proxy error", metadata: [
                "status": "\(local.status.code)", "error": "\(error)", "direction": "\(context.direction.rawValue)",
            ])
        }
        responseStarted = true
        if isGRPC && local.status != .ok {
            // gRPC clients read a status, not an HTTP error: a trailers-only response.
            let head = GRPC.trailersOnly(for: local)
            context.recordResponseStatus(head.status)
            context.recordGRPCStatus(from: head.headerFields)
            finish(.responded(status: head.status.code))
            downstream.writeResponseHead(head, for: self)
            downstream.finishResponse(nil, for: self)
            return
        }
        let (head, body) = local.makeHead(allocator: ByteBufferAllocator())
        let sendsBody = request.method != .head && body.readableBytes > 0
        context.recordResponseStatus(head.status)
        if sendsBody { context.recordResponseBody(bytes: body.readableBytes) }
        finish(.responded(status: head.status.code))
        downstream.writeResponseHead(head, for: self)
        if sendsBody {
            downstream.writeResponseBody(body)
        }
        downstream.finishResponse(nil, for: self)
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
            upstream.delegate = nil
            upstream.cancel()
        }
    }

    private func finish(_ outcome: ExchangeOutcome) {
        guard phase != .done else { return }
        phase = .done
        timeout?.cancel()
        timeout = nil
        tryTimer?.cancel()
        tryTimer = nil
        kept = nil
        endTry(.abandoned)
        buffered.removeAll()
        chain.complete(outcome, context: context)
    }

    private var endpointText: String { endpoint.map { "\($0)" } ?? "?" }

    private static func isLoopbackOrSelf(_ host: String, _ listenHost: String) -> Bool {
        host == listenHost || host == "localhost" || host.hasPrefix("127.") || host == "::1" || listenHost == "0.0.0.0"
    }
}
