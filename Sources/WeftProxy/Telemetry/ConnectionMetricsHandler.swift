import NIOCore
import WeftTelemetry

/// First in every client and upstream connection's pipeline: counts the connection and its
/// bytes (`tcp_open_total`, `tcp_close_total`, `tcp_open_connections`, `tcp_*_bytes_total`).
final class ConnectionMetricsHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let metrics: TCPMetrics
    private var open = false

    init(metrics: TCPMetrics) {
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { opened() }
    }

    func channelActive(context: ChannelHandlerContext) {
        opened()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if open {
            open = false
            metrics.connectionClosed()
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        metrics.readBytes.increment(by: Int64(unwrapInboundIn(data).readableBytes))
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        metrics.writeBytes.increment(by: Int64(unwrapOutboundIn(data).readableBytes))
        context.write(data, promise: promise)
    }

    private func opened() {
        guard !open else { return }
        open = true
        metrics.connectionOpened()
    }
}
