import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 connection to an upstream endpoint. Confined to its channel's event loop
/// (it only crosses futures completed on that loop), hence the unchecked `Sendable`.
final class UpstreamConnection: @unchecked Sendable {
    let endpoint: ListenAddress
    let channel: any Channel
    let handler: UpstreamHandler
    /// True when the connection served an earlier request (it may have been closed by the
    /// upstream meanwhile, which makes a failure before any response byte safe to retry).
    var reused = false
    fileprivate var idleTimer: Scheduled<Void>?

    init(endpoint: ListenAddress, channel: any Channel, handler: UpstreamHandler) {
        self.endpoint = endpoint
        self.channel = channel
        self.handler = handler
    }

    func close() {
        handler.delegate = nil
        channel.close(promise: nil)
    }
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

/// Keep-alive connections to upstream endpoints, owned by one event loop and used only on it
/// (so a request and its upstream connection never hop threads).
final class UpstreamPool {
    let eventLoop: any EventLoop
    private var idle: [ListenAddress: [UpstreamConnection]] = [:]
    private var closing = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// An idle connection to `endpoint`, or a new one.
    func acquire(_ endpoint: ListenAddress, settings: UpstreamConfig, forceNew: Bool = false) -> EventLoopFuture<UpstreamConnection> {
        eventLoop.preconditionInEventLoop()
        if !forceNew {
            while let connection = idle[endpoint]?.popLast() {
                connection.idleTimer?.cancel()
                connection.idleTimer = nil
                connection.handler.onIdleClose = nil
                if connection.channel.isActive {
                    connection.reused = true
                    return eventLoop.makeSucceededFuture(connection)
                }
            }
        }
        return connect(endpoint, timeout: settings.connectTimeout.timeAmount)
    }

    /// Returns a connection whose last response ended cleanly, for reuse.
    func release(_ connection: UpstreamConnection, settings: UpstreamConfig) {
        eventLoop.preconditionInEventLoop()
        connection.handler.delegate = nil
        connection.handler.resumeReads()
        guard !closing, connection.channel.isActive,
              (idle[connection.endpoint]?.count ?? 0) < settings.maxIdlePerEndpoint
        else {
            connection.close()
            return
        }
        idle[connection.endpoint, default: []].append(connection)
        connection.handler.onIdleClose = { [weak self, unowned connection] in
            self?.remove(connection)
        }
        connection.idleTimer = eventLoop.assumeIsolated().scheduleTask(in: settings.idleTimeout.timeAmount) { [weak self, unowned connection] in
            self?.remove(connection)
            connection.close()
        }
    }

    /// Closes every idle connection and stops pooling (shutdown).
    func closeAll() {
        closing = true
        for connection in idle.values.joined() {
            connection.idleTimer?.cancel()
            connection.close()
        }
        idle.removeAll()
    }

    var idleCount: Int { idle.values.reduce(0) { $0 + $1.count } }

    private func remove(_ connection: UpstreamConnection) {
        connection.idleTimer?.cancel()
        connection.idleTimer = nil
        idle[connection.endpoint]?.removeAll { $0 === connection }
    }

    private func connect(_ endpoint: ListenAddress, timeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(HTTPRequestEncoder())
                    try sync.addHandler(ByteToMessageHandler(HTTPResponseDecoder(
                        leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward)))
                    try sync.addHandler(UpstreamHandler())
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .flatMapErrorThrowing { error in
                var timedOut = false
                if case ChannelError.connectTimeout = error { timedOut = true }
                throw ConnectFailure(endpoint: endpoint, underlying: error, timedOut: timedOut)
            }
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                return UpstreamConnection(endpoint: endpoint, channel: channel, handler: handler)
            }
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
