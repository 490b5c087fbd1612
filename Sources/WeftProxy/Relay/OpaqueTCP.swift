import NIOCore
import NIOPosix
import WeftTelemetry

/// Opaque TCP: bytes forwarded both ways between a client and its target, half-closes passed on.
enum OpaqueTCP {
    /// Connects to `target`; the relay handler is added once the client side is ready.
    static func connect(to target: ListenAddress, on eventLoop: any EventLoop, timeout: TimeAmount,
                        metrics: TCPMetrics) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionMetricsHandler(metrics: metrics))
                }
            }
            .connect(host: target.host, port: target.port)
    }

    /// Joins the two connections with a relay pair; the client side's detection buffer is
    /// replayed into its relay by the caller.
    static func splice(client: any Channel, upstream: any Channel) throws {
        let (clientSide, upstreamSide) = RelayHandler.pair()
        try client.pipeline.syncOperations.addHandler(clientSide)
        try upstream.pipeline.syncOperations.addHandler(upstreamSide)
        upstream.read()
    }
}
