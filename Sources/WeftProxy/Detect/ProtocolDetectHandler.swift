import Logging
import NIOCore
import WeftFilter

/// The first handler of every accepted connection. It buffers the first bytes until the
/// chain's connection filter (`protocol-detect`) tells the protocol, or its timeout passes,
/// then installs the HTTP/1.1, HTTP/2 or opaque-TCP pipeline, replays the bytes into it and
/// removes itself. Detection never routes.
final class ProtocolDetectHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private let listener: ListenerContext
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var decided = false
    /// The client half-closed before the connection was handed over: tell the next pipeline.
    private var inputClosed = false
    /// Inside a `CONNECT` tunnel: where opaque bytes go (a backend name or a host, with a port).
    private let tunnelTarget: ListenAddress?

    init(listener: ListenerContext, tunnelTarget: ListenAddress? = nil) {
        self.listener = listener
        self.tunnelTarget = tunnelTarget
    }

    /// A tunnel's detection starts when the handler is added (the connection is already active).
    func handlerAdded(context: ChannelHandlerContext) {
        if tunnelTarget != nil && context.channel.isActive {
            startDetection(context: context)
            context.read()
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        startDetection(context: context)
    }

    private func startDetection(context: ChannelHandlerContext) {
        let snapshot = listener.store.current
        guard let filter = snapshot.chain(for: listener.direction).connectionFilter else {
            decide(.http1, context: context)
            return
        }
        let port = destinationPort(snapshot, context: context)
        if let known = filter.protocolWithoutDetection(destinationPort: port) {
            decide(known, context: context)
            return
        }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: filter.detectionTimeout) { [weak self] in
            guard let self, !self.decided else { return }
            self.listener.telemetry.metrics.detectionTimeouts.increment()
            self.listener.logger.debug("protocol detection timed out; forwarding as opaque TCP",
                                       metadata: ["peer": "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
            self.decide(filter.timeoutProtocol, context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if buffered == nil {
            buffered = bytes
        } else {
            buffered!.writeBuffer(&bytes)
        }
        guard !decided else { return }
        let snapshot = listener.store.current
        guard let filter = snapshot.chain(for: listener.direction).connectionFilter else { return }
        if let detected = filter.classify(buffered!, destinationPort: destinationPort(snapshot, context: context)) {
            decide(detected, context: context)
        }
    }

    func read(context: ChannelHandlerContext) {
        // Once decided (an opaque upstream still connecting), stop reading: the hand-over reads again.
        if !decided {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        inputClosed = true
        guard !decided else { return }
        // The client will send nothing more: decide with what there is.
        let snapshot = listener.store.current
        let detected = buffered.flatMap { bytes in
            snapshot.chain(for: listener.direction).connectionFilter?.classify(bytes, destinationPort: destinationPort(snapshot, context: context))
        }
        if (buffered?.readableBytes ?? 0) == 0 {
            context.close(promise: nil)
        } else {
            decide(detected ?? .opaque, context: context)
        }
    }

    private func destinationPort(_ snapshot: ProxySnapshot, context: ChannelHandlerContext) -> Int {
        if let tunnelTarget { return tunnelTarget.port }
        return listener.direction == .inbound ? snapshot.config.inbound.app.port : (context.localAddress?.port ?? 0)
    }

    private func decide(_ detected: DetectedProtocol, context: ChannelHandlerContext) {
        guard !decided else { return }
        decided = true
        timer?.cancel()
        do {
            switch detected {
            case .http1:
                try ConnectionPipelines.addHTTP1(to: context.channel, listener: listener)
                handOver(context: context)
            case .http2:
                try ConnectionPipelines.addHTTP2(to: context.channel, listener: listener)
                handOver(context: context)
            case .opaque:
                startOpaque(context: context)
            }
        } catch {
            listener.logger.warning("could not set up the connection", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// Replays the buffered bytes into the pipeline that now follows, and leaves.
    private func handOver(context: ChannelHandlerContext) {
        if let buffered, buffered.readableBytes > 0 {
            self.buffered = nil
            context.fireChannelRead(wrapInboundOut(buffered))
            context.fireChannelReadComplete()
        }
        if inputClosed {
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        let channel = context.channel
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        channel.read()
    }

    /// Where opaque bytes go: the app inbound; a CONNECT tunnel's target (a backend's endpoint when
    /// the host names a backend) outbound; nowhere otherwise.
    private func opaqueTarget(_ snapshot: ProxySnapshot) -> ListenAddress? {
        if let tunnelTarget {
            if let backend = snapshot.backends[tunnelTarget.host], case .success(let pick) = backend.pick() { return pick.address }
            return tunnelTarget
        }
        return listener.direction == .inbound ? snapshot.config.inbound.app : nil
    }

    private func startOpaque(context: ChannelHandlerContext) {
        let snapshot = listener.store.current
        guard let target = opaqueTarget(snapshot) else {
            listener.logger.info("closing an opaque TCP connection on the outbound listener: its destination is unknown without a transparent redirect or CONNECT")
            context.close(promise: nil)
            return
        }
        OpaqueTCP.connect(to: target, on: context.eventLoop, timeout: snapshot.config.upstream.connectTimeout.timeAmount,
                          metrics: listener.upstreamTCP)
            .assumeIsolated().whenComplete { result in
                switch result {
                case .success(let upstream):
                    guard context.channel.isActive else {
                        upstream.close(promise: nil)
                        return
                    }
                    do {
                        try OpaqueTCP.splice(client: context.channel, upstream: upstream)
                        self.handOver(context: context)
                    } catch {
                        upstream.close(promise: nil)
                        context.close(promise: nil)
                    }
                case .failure(let error):
                    self.listener.logger.debug("opaque TCP connect failed", metadata: ["target": "\(target)", "error": "\(error)"])
                    context.close(promise: nil)
                }
            }
    }
}
