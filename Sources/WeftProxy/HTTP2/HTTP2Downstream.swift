import HTTPTypes
import NIOCore
import NIOHPACK
import NIOHTTP2
import WeftRegex

/// The last handler of a client HTTP/2 connection (h2c, gRPC included): routes the frames NIO's
/// handler decoded to their streams, one ``HTTP2DownstreamStream`` and one ``Exchange`` each,
/// returns the connection's receive window, and flushes once per event loop tick.
///
/// Streams live here rather than in NIO stream channels: a child channel per request (pipeline,
/// activation, close) costs more than the rest of the proxy's HTTP/2 work (the README's
/// performance section measures it). NIO's handler still runs the protocol: state machines, HPACK,
/// SETTINGS and PING, send-side flow control, the concurrency limit. This handler also ends the
/// connection gracefully (``HTTP2GracefulClose``) once it has been idle, with no stream open, for
/// the idle timeout, or when the server drains.
final class HTTP2DownstreamConnectionHandler: ChannelInboundHandler, IdleWatched {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let listener: ListenerContext
    /// The connection's: its exchanges run one at a time on its event loop.
    let scratch = MatchScratch()
    fileprivate private(set) var remoteAddress: SocketAddress?
    private var context: ChannelHandlerContext?
    /// Streams the client opened that NIO has not closed yet.
    private var streams = HTTP2StreamTable<HTTP2DownstreamStream>()
    private var flushScheduled = false
    /// Streams to reset once what they wrote is flushed: answered before their request ended, or aborted.
    private var resetsAfterFlush = RecycledList<(stream: HTTP2DownstreamStream, code: NIOHTTP2.HTTP2ErrorCode)>()

    private var graceful = HTTP2GracefulClose()
    private let gracePeriod: TimeAmount
    private var graceTimer: Scheduled<Void>?
    /// No stream open for the idle timeout (counted from when the last one ended): close gracefully.
    private let idleTimer: IdleTimer

    init(listener: ListenerContext) {
        self.listener = listener
        let config = listener.store.current.config
        self.gracePeriod = config.shutdownGracePeriod.timeAmount
        idleTimer = IdleTimer(timeout: config.downstream.idleTimeout.timeAmount)
    }

    fileprivate var isWritable: Bool { context?.channel.isWritable ?? false }
    fileprivate var eventLoop: (any EventLoop)? { context?.eventLoop }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        remoteAddress = context.channel.remoteAddress
        idleTimer.start(on: context.eventLoop, watching: self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer.cancel()
        graceTimer?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let stream: HTTP2DownstreamStream
        switch frame.payload {
        case .headers:
            if let known = streams[frame.streamID] {
                stream = known
            } else {
                // NIO's state machine admitted it: a new stream.
                stream = HTTP2DownstreamStream(id: frame.streamID, connection: self)
                streams[frame.streamID] = stream
                graceful.streamOpened(frame.streamID)
            }
        case .data:
            guard let known = streams[frame.streamID] else { return }
            stream = known
        case .ping(let data, ack: true):
            if let goAway = graceful.pingAcknowledged(data) {
                context.write(wrapOutboundOut(goAway), promise: nil)
                closeIfDone()
            }
            return
        default:
            // A RST_STREAM needs nothing here: NIO's StreamClosedEvent follows with its code.
            // Other connection frames (GOAWAY, PING, SETTINGS) are NIO's.
            return
        }
        streams.noteRead(stream)
        stream.receive(frame.payload)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        var readers = streams.takeReaders()
        for stream in readers { stream.readComplete() }
        streams.recycle(&readers)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch streams.resolve(event) {
        case .connectionWindowDue(let increment):
            write(.windowUpdate(windowSizeIncrement: increment), on: .rootStream)
            flush()
        case .receiveWindow(let stream, let size):
            stream.receiveWindowChanged(to: size)
        case .closed(let stream, let reset):
            stream.closed(reset: reset)
            if streams.isEmpty {
                idleTimer.lastActivity = .now()
                closeIfDone()
            }
        case .none:
            // Compared, not cast: a failed cast walks the runtime's casting machinery, and NIO
            // reports every stream's creation here.
            if type(of: event) == ChannelShouldQuiesceEvent.self { closeGracefully() }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer.cancel()
        graceTimer?.cancel()
        for stream in streams.removeAll() { stream.closed(reset: nil) }
        context.fireChannelInactive()
    }

    // MARK: Idle (IdleWatched) and graceful close

    var isBusy: Bool { !streams.isEmpty }

    func becameIdle() {
        closeGracefully()
    }

    /// GOAWAY and PING (``HTTP2GracefulClose``); the connection closes once the client has
    /// acknowledged and its streams are done, or when the grace period is over.
    private func closeGracefully() {
        guard let context else { return }
        let frames = graceful.start()
        guard !frames.isEmpty else { return }
        idleTimer.cancel()
        for frame in frames { context.write(wrapOutboundOut(frame), promise: nil) }
        flush()
        // Held strongly until it fires or the handler leaves the pipeline (handlerRemoved cancels it).
        graceTimer = context.eventLoop.assumeIsolated().scheduleTask(in: gracePeriod) {
            self.context?.close(promise: nil)
        }
    }

    /// After the final GOAWAY, the last stream done: close, once what was written is flushed.
    private func closeIfDone() {
        guard graceful.phase == .closing, streams.isEmpty, let context else { return }
        flush()
        // Runs after the flush just scheduled (tasks run in order): nothing written is dropped.
        context.eventLoop.assumeIsolated().execute {
            self.context?.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for stream in streams.byID.values { stream.becameWritable() }
        }
        context.fireChannelWritabilityChanged()
    }

    fileprivate func write(_ payload: HTTP2Frame.FramePayload, on id: HTTP2StreamID, promise: EventLoopPromise<Void>? = nil) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: payload)), promise: promise)
    }

    /// One flush through NIO's HTTP/2 handler per event loop tick, however many streams asked:
    /// each flush walks NIO's outbound buffers. A stream named in `reset` is reset after the
    /// flush: NIO holds DATA frames until a flush, and a reset drops what the stream still holds.
    fileprivate func flush(reset: (stream: HTTP2DownstreamStream, code: NIOHTTP2.HTTP2ErrorCode)? = nil) {
        if let reset { resetsAfterFlush.append(reset) }
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.context?.flush()
            guard !self.resetsAfterFlush.isEmpty else { return }
            var resets = self.resetsAfterFlush.take()
            for (stream, code) in resets { stream.reset(code) }
            self.resetsAfterFlush.recycle(&resets)
            self.context?.flush()
        }
    }
}

/// One client HTTP/2 stream, the client side of one ``Exchange``. It converts each head once
/// between HPACK and swift-http-types.
///
/// The response head and the last body part are held (``HTTP2HeldFrames``) until the next write,
/// flush or the end, so that the end rides on the last frame; a response without a body is one
/// HEADERS frame with END_STREAM, a gRPC Trailers-Only answer as the protocol defines it.
///
/// Back-pressure both ways: while the exchange holds client reads (filters or the upstream
/// pending, the upstream not writable) the stream's receive window is not returned, so the client
/// stops after one window; response bytes handed to NIO and not yet on the wire (NIO holds DATA
/// the client's window does not admit) make the stream unwritable above a watermark.
final class HTTP2DownstreamStream: Downstream, HTTP2TableStream, HTTP2SendWatermarked {
    let id: HTTP2StreamID
    private let connection: HTTP2DownstreamConnectionHandler
    var isReading = false
    private var exchange: Exchange?
    private var requestStarted = false
    /// NIO closed the stream (or this side reset it): nothing more may be written on it.
    private var isClosed = false
    /// The client ended its side (set before the exchange hears of the end): no more window to
    /// return, and an answer needs no reset.
    private var remoteEnded = false
    /// The final response head and latest body part, not written yet.
    private var held = HTTP2HeldFrames()
    /// A gRPC status carried in a response head that went out before the end: repeated as trailers.
    private var statusInHead: HTTPFields?
    /// The stream's receive window, returned while its reader reads.
    private var receiveWindow = ReceiveWindow()
    /// Response body bytes written to NIO and not yet written to the socket.
    var unsentBodyBytes = 0

    fileprivate init(id: HTTP2StreamID, connection: HTTP2DownstreamConnectionHandler) {
        self.id = id
        self.connection = connection
    }

    var listener: ListenerContext { connection.listener }
    var scratch: MatchScratch { connection.scratch }
    var remoteAddress: SocketAddress? { connection.remoteAddress }
    var isWritable: Bool { isBelowSendWatermark && connection.isWritable }

    // MARK: Request

    fileprivate func receive(_ payload: HTTP2Frame.FramePayload) {
        switch payload {
        case .headers(let headers) where !requestStarted:
            requestStarted = true
            if headers.endStream { remoteEnded = true }
            let request: HTTPRequest
            do {
                request = try HTTP2Fields.request(from: headers.headers)
            } catch {
                refuse(error)
                return
            }
            guard let eventLoop = connection.eventLoop else { return }
            let exchange = Exchange(downstream: self, request: request, framing: .none, protocolVersion: .http2,
                                    eventLoop: eventLoop)
            self.exchange = exchange
            exchange.start()
            if headers.endStream { self.exchange?.requestEnd(nil) }
        case .headers(let trailers):
            remoteEnded = true
            do {
                let fields = try HTTP2Fields.trailers(from: trailers.headers, inRequest: true)
                exchange?.requestEnd(fields)
            } catch {
                refuse(error)
            }
        case .data(let data):
            if data.endStream { remoteEnded = true }
            if case .byteBuffer(let body) = data.data, body.readableBytes > 0 {
                exchange?.requestBody(body)
            }
            if data.endStream { exchange?.requestEnd(nil) }
        default:
            break
        }
    }

    fileprivate func readComplete() {
        exchange?.flushUpstream()
    }

    fileprivate func receiveWindowChanged(to size: Int) {
        receiveWindow.reported(size)
        returnReceiveWindowIfDue()
    }

    func resumeReadsIfPossible() {
        returnReceiveWindowIfDue()
    }

    /// Tops the receive window up unless the exchange holds reads back. Never for a stream NIO has
    /// closed: a WINDOW_UPDATE on a closed stream is a connection error.
    private func returnReceiveWindowIfDue() {
        guard exchange?.holdsClientReads != true, !remoteEnded, !isClosed,
              let increment = receiveWindow.takeIncrement() else { return }
        connection.write(.windowUpdate(windowSizeIncrement: increment), on: id)
        connection.flush()
    }

    // MARK: Response

    func writeResponseHead(_ response: HTTPResponse, for exchange: Exchange) {
        // HTTP/2 has no 101; other informational heads pass as their own HEADERS frame.
        let status = response.status  // parsed from the `:status` field on every read
        guard status != .switchingProtocols else { return }
        let headers = HTTP2Fields.headers(for: response)
        if status.kind == .informational {
            write(.headers(.init(headers: headers)))
            return
        }
        if let status = response.headerFields.firstValue(GRPC.statusField) {
            var fields = HTTPFields()
            fields[GRPC.statusField] = status
            fields[GRPC.messageField] = response.headerFields[GRPC.messageField]
            statusInHead = fields
        }
        held.head = headers
    }

    func writeResponseBody(_ body: ByteBuffer) {
        held.release(write)
        held.body = body
    }

    func flush() {
        held.release(write)
        connection.flush()
    }

    /// Writes a frame of the response. A DATA frame that leaves the stream open counts as unsent
    /// until NIO has written it to the socket.
    private func write(_ payload: HTTP2Frame.FramePayload) {
        guard !isClosed else { return }
        guard case .data(let data) = payload, !data.endStream, let eventLoop = connection.eventLoop else {
            connection.write(payload, on: id)
            return
        }
        connection.write(payload, on: id, promise: unsentBodyPromise(data.data.readableBytes, on: eventLoop))
    }

    func unsentBodyDrained() {
        becameWritable()
    }

    fileprivate func becameWritable() {
        if isWritable { exchange?.clientBecameWritable() }
    }

    func finishResponse(_ trailers: HTTPFields?, for finished: Exchange) {
        if exchange === finished { exchange = nil }
        // A gRPC status in a head that is already out must end the stream in a HEADERS frame, not
        // an empty DATA frame: repeated as trailers. (A head still held ends the stream itself:
        // Trailers-Only.)
        let trailers = trailers ?? (held.isHoldingHead ? nil : statusInHead)
        held.end(trailers: trailers.map(HTTP2Fields.headers(for:)), write)
        // An answer before the whole request: once it is out, tell the client to stop sending.
        connection.flush(reset: remoteEnded ? nil : (self, .noError))
    }

    /// What the response has so far goes out (a gRPC stream's messages before the failure count),
    /// then RST_STREAM (CANCEL) tells the client it is incomplete.
    func abort(for finished: Exchange) {
        if exchange === finished { exchange = nil }
        held.release(write)
        connection.flush(reset: (self, .cancel))
    }

    func switchProtocols(to upstream: HTTP1UpstreamConnection) {
        // HTTP/2 has no upgrades: the exchange never asks.
        upstream.cancel()
        exchange = nil
        connection.flush(reset: (self, .cancel))
    }

    /// The client sent a malformed header block (RFC 9113 §8.1.1): the stream is reset with
    /// PROTOCOL_ERROR and its exchange, if any, dropped; the connection serves on.
    private func refuse(_ malformed: MalformedHeaderBlock) {
        connection.listener.logger.debug("reset a client stream: malformed header block", metadata: [
            "peer": "\(remoteAddress.map { "\($0)" } ?? "?")", "error": "\(malformed)",
        ])
        if let exchange {
            self.exchange = nil
            exchange.abort("the client sent a malformed header block: \(malformed)")
        }
        reset(.protocolError)
        connection.flush()
    }

    /// RST_STREAM, unless the stream is closed already.
    fileprivate func reset(_ code: NIOHTTP2.HTTP2ErrorCode) {
        guard !isClosed else { return }
        isClosed = true
        connection.write(.rstStream(code), on: id)
    }

    /// NIO closed the stream (`reset` names the code of a reset, by either side), or the
    /// connection went away. An exchange still running is aborted.
    fileprivate func closed(reset: NIOHTTP2.HTTP2ErrorCode?) {
        isClosed = true
        guard let exchange else { return }
        self.exchange = nil
        exchange.abort(reset.map { "client stream reset (\($0))" } ?? "client closed the connection")
    }
}
