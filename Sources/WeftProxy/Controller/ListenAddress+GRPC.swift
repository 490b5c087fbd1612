import GRPCNIOTransportHTTP2Posix

extension ListenAddress {
    /// The address as a gRPC client target (`localhost` as 127.0.0.1, so no resolver is involved).
    public var grpcTarget: any ResolvableTarget {
        host.contains(":")
            ? ResolvableTargets.IPv6(addresses: [.init(host: host, port: port)])
            : ResolvableTargets.IPv4(addresses: [.init(host: host == "localhost" ? "127.0.0.1" : host, port: port)])
    }
}
