import NIOCore
import NIOPosix

/// Opaque TCP: bytes forwarded both ways between a client and its target, half-closes passed on.
enum OpaqueTCP {
    /// Connects to `target`; the relay handler is added once the client side is ready.
    static func connect(to target: ListenAddress, on eventLoop: any EventLoop, timeout: TimeAmount) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: target.host, port: target.port)
    }

    /// Joins the two connections with a relay pair; the client side's detection buffer is
    /// replayed into its relay by the caller.
    static func splice(client: any Channel, upstream: any Channel, counters: ProxyCounters) throws {
        let (clientSide, upstreamSide) = RelayHandler.pair(counters: counters)
        try client.pipeline.syncOperations.addHandler(clientSide)
        try upstream.pipeline.syncOperations.addHandler(upstreamSide)
        counters.tcpOpened.add(1, ordering: .relaxed)
        client.closeFuture.whenComplete { _ in counters.tcpClosed.add(1, ordering: .relaxed) }
        upstream.read()
    }
}
