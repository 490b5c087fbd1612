import HTTPTypes
import NIOCore
import NIOHPACK
import NIOHTTP2

/// One multiplexed HTTP/2 connection to an upstream endpoint, shared by every request to it
/// from one event loop.
///
/// Its streams live here rather than in NIO stream channels: a stream channel's pipeline,
/// activation and close cost about 6 µs per request (the README's performance section measures
/// it), so the connection's handler routes frames by stream ID and each stream keeps its own
/// receive window. NIO's HTTP/2 handler still runs the protocol: state machines, HPACK,
/// SETTINGS and PING, send-side flow control, and queueing streams beyond the server's
/// concurrency limit. Confined to its event loop, hence the unchecked `Sendable`.
final class HTTP2UpstreamConnection: @unchecked Sendable {
    let endpoint: ListenAddress
    let channel: any Channel
    /// Set on GOAWAY (or when stream IDs run out): no new streams here; the pool opens another connection.
    var isGoingAway = false
    /// Set once the server's SETTINGS arrived: it speaks HTTP/2.
    var handshakeDone = false
    /// The connection handler's context while it is in the pipeline.
    fileprivate var context: ChannelHandlerContext?
    /// Streams that have sent their HEADERS and are not closed yet.
    fileprivate var streams = HTTP2StreamTable<HTTP2UpstreamStream>()
    private var flushScheduled = false
    /// Streams whose head was flushed before their request's end was known.
    private var headsAtFlush = RecycledList<HTTP2UpstreamStream>()
    /// Client streams are odd-numbered, in the order they start.
    private var nextStreamID: HTTP2StreamID?
    /// Succeeds once NIO's handler has seen the channel become active and sent the connection
    /// preface: no stream may send before. (A connect's future completes before channelActive.)
    let ready: EventLoopPromise<Void>

    /// `firstStreamID` is 1 but in tests, which start near the end of the 2³⁰ IDs a connection has.
    init(endpoint: ListenAddress, channel: any Channel, firstStreamID: HTTP2StreamID = 1) {
        self.endpoint = endpoint
        self.channel = channel
        nextStreamID = firstStreamID
        ready = channel.eventLoop.makePromise()
    }

    var isUsable: Bool { channel.isActive && !isGoingAway }

    /// A new request stream on this connection; it is numbered when its HEADERS go out.
    func openStream() -> any UpstreamStream {
        HTTP2UpstreamStream(endpoint: endpoint, connection: self)
    }

    /// Writes one of `stream`'s frames. The first (HEADERS) opens the stream: IDs follow the order
    /// streams start sending, as HTTP/2 requires.
    fileprivate func write(_ payload: HTTP2Frame.FramePayload, for stream: HTTP2UpstreamStream, promise: EventLoopPromise<Void>? = nil) {
        let id: HTTP2StreamID
        if let context, channel.isActive, let known = stream.id ?? number(stream) {
            id = known
            context.write(NIOAny(HTTP2Frame(streamID: id, payload: payload)), promise: promise)
        } else {
            // The connection went away (or ran out of stream IDs) before this stream could start:
            // fail it on the next tick, not inside the exchange's own call; it is retried elsewhere.
            promise?.fail(ChannelError.ioOnClosedChannel)
            channel.eventLoop.assumeIsolated().execute { stream.connectionClosed() }
        }
    }

    /// The next stream ID, given to `stream`; nil once all 2³¹ are used (the connection is going away).
    private func number(_ stream: HTTP2UpstreamStream) -> HTTP2StreamID? {
        guard let id = nextStreamID else { return nil }
        nextStreamID = id < HTTP2StreamID.maxID.advanced(by: -1) ? id.advanced(by: 2) : nil
        if nextStreamID == nil { isGoingAway = true }
        stream.id = id
        streams[id] = stream
        return id
    }

    /// One flush through NIO's HTTP/2 handler per event loop tick, however many streams asked:
    /// every exchange flushes its stream after a client read, and each flush walks NIO's outbound
    /// buffers (NIO's stream channels batched these the same way). Heads held by `waitingHead`
    /// go out first: by then a request that had no body has ended and its head carried END_STREAM.
    fileprivate func flush(waitingHead stream: HTTP2UpstreamStream? = nil) {
        if let stream { headsAtFlush.append(stream) }
        guard !flushScheduled else { return }
        flushScheduled = true
        channel.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            var streams = self.headsAtFlush.take()
            for stream in streams { stream.releaseHead() }
            self.headsAtFlush.recycle(&streams)
            self.context?.flush()
        }
    }

    /// Whether `stream` is open as far as this connection knows (NIO has not reported it closed).
    fileprivate func isOpen(_ stream: HTTP2UpstreamStream) -> Bool {
        guard let id = stream.id else { return false }
        return streams[id] === stream
    }

    fileprivate func forget(_ stream: HTTP2UpstreamStream) {
        if let id = stream.id, streams[id] === stream { streams[id] = nil }
        closeIfDone()
    }

    /// A connection going away closes once its last stream is done (the server may be waiting for it).
    fileprivate func closeIfDone() {
        if isGoingAway && streams.isEmpty { context?.close(promise: nil) }
    }
}

/// The last handler of an upstream HTTP/2 connection: routes the frames NIO's handler decoded to
/// their streams, returns the connection's receive window, and watches SETTINGS and GOAWAY. (A
/// connection error closes the connection through `CloseAfterErrorGoAway`, NIO's frame delegate.)
final class HTTP2UpstreamConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let connection: HTTP2UpstreamConnection

    init(connection: HTTP2UpstreamConnection) {
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connection.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        connection.context = nil
        connection.ready.fail(ChannelError.ioOnClosedChannel)
    }

    func channelActive(context: ChannelHandlerContext) {
        connection.ready.succeed()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .settings(.settings):
            connection.handshakeDone = true
        case .goAway(let lastStreamID, _, _):
            // Streams above lastStreamID were not processed; NIO closes them (retried as resets).
            connection.isGoingAway = true
            for (id, stream) in connection.streams.byID.entries where id > lastStreamID { stream.remoteEnded = true }
            connection.closeIfDone()
        case .headers, .data:
            // (A RST_STREAM needs nothing here: NIO's StreamClosedEvent follows with its code.)
            guard let stream = connection.streams[frame.streamID] else { return }
            connection.streams.noteRead(stream)
            stream.receive(frame.payload)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        var readers = connection.streams.takeReaders()
        for stream in readers { stream.readComplete() }
        connection.streams.recycle(&readers)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch connection.streams.resolve(event) {
        case .connectionWindowDue(let increment):
            context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))),
                          promise: nil)
            connection.flush()
        case .receiveWindow(let stream, let size):
            stream.receiveWindowChanged(to: size)
        case .closed(let stream, let reset):
            stream.closed(reset: reset)
            connection.closeIfDone()
        case .none:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.ready.fail(ChannelError.ioOnClosedChannel)
        for stream in connection.streams.removeAll() { stream.connectionClosed() }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        for stream in connection.streams.byID.values { stream.writabilityChanged() }
        context.fireChannelWritabilityChanged()
    }

    /// Stream errors (NIO resets the stream; its StreamClosedEvent fails it) and connection errors
    /// (NIO sends GOAWAY; `CloseAfterErrorGoAway` closes the connection) arrive here alike, so
    /// they stop here: neither is this connection's to act on again.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// One request on an upstream HTTP/2 stream. A request without a body goes out as one HEADERS
/// frame with END_STREAM, as every HTTP/2 client sends it: a separate empty DATA frame makes
/// servers such as nginx answer early and reset the stream.
///
/// Back-pressure both ways: while the exchange pauses reads (its client is slow) the stream's
/// receive window is not returned, so the server stops after one window; request body bytes
/// handed to NIO and not yet on the wire (NIO holds DATA the server's window does not admit)
/// make the stream unwritable above a watermark.
final class HTTP2UpstreamStream: UpstreamStream, HTTP2TableStream, HTTP2SendWatermarked {
    let endpoint: ListenAddress
    let connection: HTTP2UpstreamConnection
    /// The exchange, until the response ends or fails or the exchange lets go (`finished`,
    /// `cancel`): each of those clears it (strong: see ``Exchange``).
    var delegate: (any UpstreamResponseDelegate)?
    /// A stream rides a shared connection that may be going away (GOAWAY, a reset storm limit):
    /// a failure before any response byte, with no request body sent, is safe to retry once.
    let wasReused = true
    /// Assigned when the HEADERS go out.
    fileprivate var id: HTTP2StreamID?
    var isReading = false
    /// The server ended its side (END_STREAM or a reset): no more window to return.
    fileprivate var remoteEnded = false
    /// The request head, held until we know whether a body follows.
    private var held = HTTP2HeldFrames()
    private var receivedFinalHead = false
    private var readsPaused = false
    /// The stream's receive window, returned while its reader reads.
    private var receiveWindow = ReceiveWindow()
    /// Request body bytes written to NIO and not yet written to the socket.
    var unsentBodyBytes = 0

    init(endpoint: ListenAddress, connection: HTTP2UpstreamConnection) {
        self.endpoint = endpoint
        self.connection = connection
    }

    var isWritable: Bool { isBelowSendWatermark && connection.channel.isWritable }

    // MARK: Request

    func writeHead(_ request: HTTPRequest, framing: HTTP1Framing) {
        held.head = HTTP2Fields.headers(for: request)
    }

    func writeBody(_ body: ByteBuffer) {
        releaseHead()
        let written = unsentBodyPromise(body.readableBytes, on: connection.channel.eventLoop)
        connection.write(.data(.init(data: .byteBuffer(body))), for: self, promise: written)
    }

    func writeEnd(_ trailers: HTTPFields?) {
        held.end(trailers: trailers.map(HTTP2Fields.headers(for:))) { connection.write($0, for: self) }
    }

    func flush() {
        // A head still held waits for the flush at the end of the tick: the exchange flushes as
        // soon as it has a stream, and a request without a body ends in the same tick.
        connection.flush(waitingHead: held.isHoldingHead ? self : nil)
    }

    /// Writes the held head, if any: the request's body is still to come.
    fileprivate func releaseHead() {
        held.release { connection.write($0, for: self) }
    }

    func unsentBodyDrained() {
        if isWritable { delegate?.upstreamWritabilityChanged() }
    }

    func pauseReads() { readsPaused = true }

    func resumeReads() {
        readsPaused = false
        returnReceiveWindowIfDue()
    }

    func finished(requestComplete: Bool) {
        delegate = nil
        if !requestComplete { reset() }
    }

    func cancel() {
        delegate = nil
        held = HTTP2HeldFrames()
        reset()
    }

    /// RST_STREAM (CANCEL, or PROTOCOL_ERROR for a malformed answer), unless the stream never
    /// started or is closed already.
    private func reset(_ code: NIOHTTP2.HTTP2ErrorCode = .cancel) {
        guard connection.isOpen(self) else { return }
        connection.forget(self)
        remoteEnded = true
        connection.write(.rstStream(code), for: self)
        connection.flush()
    }

    // MARK: Response

    fileprivate func receive(_ payload: HTTP2Frame.FramePayload) {
        switch payload {
        case .headers(let headers):
            if headers.endStream { remoteEnded = true }
            guard let delegate else { return }
            if receivedFinalHead {
                // Trailers.
                let trailers: HTTPFields
                do {
                    trailers = try HTTP2Fields.trailers(from: headers.headers, inRequest: false)
                } catch {
                    fail(.error(HTTP2UpstreamError.malformedTrailers(error)))
                    reset(.protocolError)
                    return
                }
                self.delegate = nil
                delegate.upstreamResponseEnd(trailers)
                return
            }
            let response: HTTPResponse
            do {
                response = try HTTP2Fields.response(from: headers.headers)
            } catch {
                fail(.error(HTTP2UpstreamError.malformedResponseHead(error)))
                reset(.protocolError)
                return
            }
            if response.status.kind != .informational { receivedFinalHead = true }
            delegate.upstreamResponseHead(response)
            if headers.endStream {
                self.delegate = nil
                delegate.upstreamResponseEnd(nil)
            }
        case .data(let data):
            if data.endStream { remoteEnded = true }
            guard let delegate else { return }
            if case .byteBuffer(let body) = data.data, body.readableBytes > 0 {
                delegate.upstreamResponseBody(body)
            }
            if data.endStream {
                self.delegate = nil
                delegate.upstreamResponseEnd(nil)
            }
        default:
            break
        }
    }

    fileprivate func readComplete() {
        delegate?.upstreamReadComplete()
    }

    fileprivate func receiveWindowChanged(to size: Int) {
        receiveWindow.reported(size)
        returnReceiveWindowIfDue()
    }

    /// Tops the receive window up unless the exchange holds reads back. Never for a stream NIO has
    /// closed: a WINDOW_UPDATE on a closed stream is a connection error.
    private func returnReceiveWindowIfDue() {
        guard !readsPaused, !remoteEnded, connection.isOpen(self),
              let increment = receiveWindow.takeIncrement() else { return }
        connection.write(.windowUpdate(windowSizeIncrement: increment), for: self)
        connection.flush()
    }

    fileprivate func writabilityChanged() {
        delegate?.upstreamWritabilityChanged()
    }

    /// NIO closed the stream: a reset (from the server, or NIO's own for a stream error or GOAWAY),
    /// or both sides ended.
    ///
    /// The failure is reported on the next tick: when a connection error makes NIO close streams
    /// (a GOAWAY naming none, for a peer it deems misbehaving), the exchange's retry must find this
    /// connection already going away, which `CloseAfterErrorGoAway` marks as the GOAWAY goes out.
    fileprivate func closed(reset: NIOHTTP2.HTTP2ErrorCode?) {
        remoteEnded = true
        guard delegate != nil else { return }
        connection.channel.eventLoop.assumeIsolated().execute { self.connectionClosed(reset: reset) }
    }

    /// The stream ended with the connection, or (`reset`) was reset, before its response ended.
    fileprivate func connectionClosed(reset: NIOHTTP2.HTTP2ErrorCode? = nil) {
        remoteEnded = true
        if let reset {
            fail(.reset("\(reset)"))
        } else if !connection.handshakeDone {
            fail(.error(HTTP2UpstreamError.noHTTP2))
        } else {
            fail(.closed)
        }
    }

    private func fail(_ failure: UpstreamFailure) {
        guard let delegate else { return }
        self.delegate = nil
        delegate.upstreamFailed(failure)
    }
}

enum HTTP2UpstreamError: Error, CustomStringConvertible {
    case malformedResponseHead(MalformedHeaderBlock)
    case malformedTrailers(MalformedHeaderBlock)
    case noHTTP2

    var description: String {
        switch self {
        case .malformedResponseHead(let malformed): return "sent a malformed response head (\(malformed))"
        case .malformedTrailers(let malformed): return "sent malformed trailers (\(malformed))"
        case .noHTTP2: return "does not speak HTTP/2 (it closed the connection before the HTTP/2 handshake; the client sent HTTP/2, so the proxy did too)"
        }
    }
}
