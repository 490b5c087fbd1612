import AsyncHTTPClient
import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// Calls to other services, by name, through the sidecar's outbound listener.
enum MeshClients {
    /// A gRPC client for `service`: connects to the outbound proxy, with the service as `:authority`.
    static func grpc(_ service: String, outbound: (host: String, port: Int)) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.http2.authority = service
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: outbound.host == "localhost" ? "127.0.0.1" : outbound.host, port: outbound.port),
            transportSecurity: .plaintext, config: config)
        return GRPCClient(transport: transport)
    }

    /// An HTTP/1.1 client for other services through the outbound proxy.
    static func http(outbound: (host: String, port: Int)) -> MeshHTTP {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(2)
        return MeshHTTP(client: HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration), outbound: outbound)
    }
}

/// HTTP/1.1 to a service by name: sent to the outbound proxy with `Host: SERVICE`. (AsyncHTTPClient's
/// own proxy support tunnels with CONNECT, which would hide the requests from the proxy.)
struct MeshHTTP: Sendable {
    let client: HTTPClient
    let outbound: (host: String, port: Int)

    func get(_ service: String, _ pathAndQuery: String) async throws -> (status: UInt, body: String) {
        var request = HTTPClientRequest(url: "http://\(outbound.host):\(outbound.port)\(pathAndQuery)")
        request.headers.replaceOrAdd(name: "host", value: service)
        let response = try await client.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (response.status.code, String(buffer: body))
    }

    func shutdown() async throws {
        try await client.shutdown()
    }
}
