import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import WeftTelemetry
#if canImport(Glibc)
import Glibc
#endif

/// The protocol spoken to an upstream: the one the client spoke (a gRPC call stays HTTP/2).
enum UpstreamProtocol: Sendable {
    case http1
    case http2
}

/// Why no upstream connection could be made.
struct ConnectFailure: Error, CustomStringConvertible {
    let endpoint: ListenAddress
    let underlying: any Error
    let timedOut: Bool

    var description: String {
        if timedOut { return "connect to \(endpoint) timed out" }
        return "connect to \(endpoint) failed: \(Self.reason(underlying))"
    }

    /// `connection refused`, `no route to host`, … rather than NIO's full error dump.
    private static func reason(_ error: any Error) -> String {
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)).lowercased()
        }
        if let connect = error as? NIOConnectionError {
            if let first = connect.connectionErrors.first { return reason(first.error) }
            if let dns = connect.dnsAError ?? connect.dnsAAAAError { return "cannot resolve \(connect.host): \(dns)" }
            return "no address for \(connect.host)"
        }
        return "\(error)"
    }
}

/// Connections to upstream endpoints, owned by one event loop and used only on it (so a request
/// and its upstream never hop threads): idle HTTP/1.1 keep-alive connections, one request at a
/// time each, and one multiplexed HTTP/2 connection per endpoint.
final class UpstreamPool {
    let eventLoop: any EventLoop
    /// Idle connections by endpoint. A class per endpoint: taking and returning a connection
    /// mutates its list in place (a dictionary `modify` with a `String` key allocates).
    private var idle: [ListenAddress: IdleConnections] = [:]
    private var http2: [ListenAddress: HTTP2UpstreamConnection] = [:]
    private var http2Connecting: [ListenAddress: EventLoopFuture<HTTP2UpstreamConnection>] = [:]
    private var closing = false
    /// Closes connections idle past their timeout; scheduled only while some are idle, so a
    /// connection going back to the pool costs a clock read, not a timer per request.
    private var idleSweep: Scheduled<Void>?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// What ``UpstreamPool/acquire(_:protocol:settings:metrics:forceNew:)`` gives.
    enum Acquired {
        /// An idle HTTP/1.1 connection or a stream on the live HTTP/2 connection: the usual case
        /// under load, no future involved.
        case ready(any UpstreamStream)
        /// A new HTTP/1.1 connection, or a stream on a new HTTP/2 connection, once it is up.
        case pending(EventLoopFuture<any UpstreamStream>.Isolated)
    }

    /// A stream to `endpoint` speaking `protocol`: an idle HTTP/1.1 connection (unless `forceNew`),
    /// a new one, or a stream on the shared HTTP/2 connection. New connections are counted in
    /// `metrics` (the requesting listener's `peer="dst"` series).
    func acquire(_ endpoint: ListenAddress, protocol: UpstreamProtocol, settings: UpstreamConfig, metrics: TCPMetrics,
                 forceNew: Bool = false) -> Acquired {
        eventLoop.preconditionInEventLoop()
        switch `protocol` {
        case .http2:
            if let connection = http2[endpoint], connection.isUsable {
                return .ready(connection.openStream())
            }
            // Connecting (the first request, or after the connection went away).
            return .pending(connectHTTP2(endpoint, settings: settings, metrics: metrics).assumeIsolated().map { $0.openStream() })
        case .http1:
            if !forceNew, let connection = takeIdle(endpoint) { return .ready(connection) }
            return .pending(connectHTTP1(endpoint, settings: settings, metrics: metrics).map { $0 as any UpstreamStream })
        }
    }

    /// An open idle HTTP/1.1 connection to `endpoint`, taken out of the pool, if there is one.
    private func takeIdle(_ endpoint: ListenAddress) -> HTTP1UpstreamConnection? {
        guard let list = idle[endpoint] else { return nil }
        while let connection = list.connections.popLast() {
            connection.isIdle = false
            if connection.channel.isActive {
                connection.wasReused = true
                return connection
            }
        }
        return nil
    }

    /// Takes back a connection whose last response ended cleanly, for reuse.
    func release(_ connection: HTTP1UpstreamConnection, settings: UpstreamConfig) {
        eventLoop.preconditionInEventLoop()
        connection.handler.resumeReads()
        let list = idle[connection.endpoint]
        guard !closing, connection.channel.isActive, (list?.connections.count ?? 0) < settings.maxIdlePerEndpoint else {
            connection.cancel()
            return
        }
        connection.isIdle = true
        connection.idleSince = .now()
        if let list {
            list.connections.append(connection)
        } else {
            idle[connection.endpoint] = IdleConnections(connection)
        }
        if idleSweep == nil { scheduleIdleSweep(in: settings.idleTimeout.timeAmount) }
    }

    private func scheduleIdleSweep(in delay: TimeAmount) {
        idleSweep = eventLoop.assumeIsolated().scheduleTask(in: delay) {
            self.sweepIdle()
        }
    }

    /// Closes the connections idle for longer than their timeout and comes back when the next
    /// one is due (or not at all once the pool holds none).
    private func sweepIdle() {
        idleSweep = nil
        let now = NIODeadline.now()
        var nextDue: NIODeadline?
        for list in idle.values {
            list.connections.removeAll { connection in
                let due = connection.idleSince + connection.settings.idleTimeout.timeAmount
                if due <= now {
                    connection.isIdle = false
                    connection.cancel()
                    return true
                }
                nextDue = min(nextDue ?? due, due)
                return false
            }
        }
        idle = idle.filter { !$0.value.connections.isEmpty }
        if let nextDue { scheduleIdleSweep(in: nextDue - now) }
    }

    /// A new shared HTTP/2 connection to `endpoint` (or the one already connecting).
    private func connectHTTP2(_ endpoint: ListenAddress, settings: UpstreamConfig, metrics: TCPMetrics) -> EventLoopFuture<HTTP2UpstreamConnection> {
        if let pending = http2Connecting[endpoint] { return pending }
        http2[endpoint] = nil
        let future = connectChannel(endpoint, timeout: settings.connectTimeout.timeAmount, metrics: metrics) { channel in
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(FlushCoalescingHandler())
            let connection = HTTP2UpstreamConnection(endpoint: endpoint, channel: channel)
            let closer = CloseAfterErrorGoAway(channel: channel) { connection.isGoingAway = true }
            try sync.addHandler(NIOHTTP2Handler(mode: .client, frameDelegate: closer, connectionConfiguration: HTTP2ConnectionSettings.connection))
            try sync.addHandler(HTTP2UpstreamConnectionHandler(connection: connection))
        }.assumeIsolated().flatMap { channel -> EventLoopFuture<HTTP2UpstreamConnection> in
            do {
                let connection = try channel.pipeline.syncOperations.handler(type: HTTP2UpstreamConnectionHandler.self).connection
                return connection.ready.futureResult.map { connection }
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.nonisolated()
        http2Connecting[endpoint] = future
        // Callbacks hold the pool and the connection strongly (see `Exchange`): pools live as
        // long as the proxy's event loops, and a close future completes.
        future.assumeIsolated().whenComplete { result in
            self.http2Connecting[endpoint] = nil
            guard case .success(let connection) = result else { return }
            if self.closing {
                connection.channel.close(promise: nil)
                return
            }
            self.http2[endpoint] = connection
            connection.channel.closeFuture.assumeIsolated().whenComplete { _ in
                if let current = self.http2[endpoint], current === connection {
                    self.http2[endpoint] = nil
                }
            }
        }
        return future
    }

    /// Closes every idle connection and stops pooling (shutdown).
    func closeAll() {
        for connection in http2.values { connection.channel.close(promise: nil) }
        http2.removeAll()
        closing = true
        idleSweep?.cancel()
        idleSweep = nil
        for connection in idle.values.flatMap(\.connections) {
            connection.isIdle = false
            connection.cancel()
        }
        idle.removeAll()
    }

    /// An idle connection the upstream closed: out of the pool.
    func remove(_ connection: HTTP1UpstreamConnection) {
        guard connection.isIdle else { return }
        connection.isIdle = false
        idle[connection.endpoint]?.connections.removeAll { $0 === connection }
    }

    private func connectHTTP1(_ endpoint: ListenAddress, settings: UpstreamConfig, metrics: TCPMetrics) -> EventLoopFuture<HTTP1UpstreamConnection>.Isolated {
        connectChannel(endpoint, timeout: settings.connectTimeout.timeAmount, metrics: metrics) { channel in
            let sync = channel.pipeline.syncOperations
            let decoder = UpstreamResponseDecoder()
            try sync.addHandler(ByteToMessageHandler(decoder))
            try sync.addHandler(HTTP1UpstreamHandler(responseDecoder: decoder))
        }.assumeIsolated().flatMapThrowing { channel in
            let handler = try channel.pipeline.syncOperations.handler(type: HTTP1UpstreamHandler.self)
            return HTTP1UpstreamConnection(endpoint: endpoint, channel: channel, handler: handler, pool: self, settings: settings)
        }
    }

    private func connectChannel(_ endpoint: ListenAddress, timeout: TimeAmount, metrics: TCPMetrics,
                                initialize: @escaping @Sendable (any Channel) throws -> Void) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionMetricsHandler(metrics: metrics))
                    try initialize(channel)
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .flatMapErrorThrowing { error in
                var timedOut = false
                if case ChannelError.connectTimeout = error { timedOut = true }
                throw ConnectFailure(endpoint: endpoint, underlying: error, timedOut: timedOut)
            }
    }
}

/// The idle connections to one endpoint, most recently used last.
final class IdleConnections {
    var connections: [HTTP1UpstreamConnection]

    init(_ first: HTTP1UpstreamConnection) {
        connections = [first]
    }
}

/// One ``UpstreamPool`` per event loop of the group.
final class UpstreamPools: @unchecked Sendable {
    // Immutable after init; each pool is touched only on its own event loop.
    private let pools: [ObjectIdentifier: UpstreamPool]

    init(group: any EventLoopGroup) {
        var pools: [ObjectIdentifier: UpstreamPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = UpstreamPool(eventLoop: loop)
        }
        self.pools = pools
    }

    func pool(for eventLoop: any EventLoop) -> UpstreamPool {
        guard let pool = pools[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop outside the proxy's group")
        }
        return pool
    }

    /// Closes idle connections on every loop.
    func closeAll() -> EventLoopFuture<Void> {
        let futures = pools.values.map { pool in
            let loop = pool.eventLoop
            return loop.submit { self.pool(for: loop).closeAll() }
        }
        return EventLoopFuture.andAllComplete(futures, on: futures.first?.eventLoop ?? pools.values.first!.eventLoop)
    }
}
