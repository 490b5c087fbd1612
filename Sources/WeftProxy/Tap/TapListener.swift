import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import NIOCore
import NIOPosix
import WeftTelemetry

/// The tap API's gRPC server, on the proxy's own event loops.
final class TapListener: Sendable {
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let serving: Task<Void, any Error>
    /// Where it listens, `host:port` (the port the OS chose when config said 0).
    let address: String

    private init(server: GRPCServer<HTTP2ServerTransport.Posix>, serving: Task<Void, any Error>, address: String) {
        self.server = server
        self.serving = serving
        self.address = address
    }

    /// Serves the tap API; returns once it listens, throws ``TapListenerError`` if it cannot bind.
    static func start(_ address: ListenAddress, hub: TapHub, group: any NIOCore.EventLoopGroup, logger: Logger) async throws -> TapListener {
        let socket: GRPCNIOTransportCore.SocketAddress = address.host.contains(":")
            ? .ipv6(host: address.host, port: address.port)
            : .ipv4(host: address.host == "localhost" ? "127.0.0.1" : address.host, port: address.port)
        let transport = HTTP2ServerTransport.Posix(
            address: socket, transportSecurity: .plaintext,
            eventLoopGroup: (group as? MultiThreadedEventLoopGroup) ?? .singletonMultiThreadedEventLoopGroup)
        let server = GRPCServer(transport: transport, services: [TapService(hub: hub)])
        let serving = Task { try await server.serve() }
        let shown: String
        do {
            let bound = try await transport.listeningAddress
            shown = bound.ipv4.map { "\($0.host):\($0.port)" } ?? bound.ipv6.map { "[\($0.host)]:\($0.port)" } ?? "\(bound)"
            logger.info("listening", metadata: ["listener": "tap", "address": "\(shown)"])
        } catch {
            serving.cancel()
            throw TapListenerError(address: address, reason: "\(error)")
        }
        return TapListener(server: server, serving: serving, address: shown)
    }

    /// Stops accepting taps and ends the open ones (taps are endless streams: draining would never
    /// finish); returns once the server and its connections are done with the event loops, which
    /// may then shut down.
    func stop() async {
        server.beginGracefulShutdown()
        serving.cancel()
        _ = try? await serving.value
    }
}

/// The tap listener could not start.
struct TapListenerError: Error, CustomStringConvertible {
    var address: ListenAddress
    var reason: String
    var description: String { "cannot listen for tap on \(address): \(reason)" }
}
