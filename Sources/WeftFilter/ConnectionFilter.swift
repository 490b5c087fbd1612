import NIOCore

/// What a connection carries, as decided from its first bytes.
public enum DetectedProtocol: String, Sendable, Equatable {
    /// HTTP/1.x: a request line.
    case http1
    /// HTTP/2 with prior knowledge: the `PRI * HTTP/2.0` preface.
    case http2
    /// Anything else (TLS the proxy does not terminate included): forwarded byte for byte.
    case opaque
}

/// A filter on whole connections, run before any HTTP parsing (the `protocol-detect` filter).
///
/// The proxy buffers a new connection's first bytes and asks ``classify(_:destinationPort:)``
/// until it answers; it never routes. Pure, so it is tested without sockets.
public protocol ConnectionFilter: Sendable {
    /// Whether a connection to `destinationPort` skips detection: its protocol is known up front
    /// (server-speaks-first protocols must, or they would wait out the timeout).
    func protocolWithoutDetection(destinationPort: Int) -> DetectedProtocol?
    /// The protocol the first bytes show, or nil while they do not tell yet.
    func classify(_ prefix: ByteBuffer, destinationPort: Int) -> DetectedProtocol?
    /// How long to wait for bytes that tell; then the connection is treated as ``timeoutProtocol``.
    var detectionTimeout: TimeAmount { get }
    /// What a connection is treated as when detection times out.
    var timeoutProtocol: DetectedProtocol { get }
}

/// Builds a ``ConnectionFilter`` from its typed config; registered by name like ``FilterFactory``.
public protocol ConnectionFilterFactory: Sendable {
    associatedtype Config: Decodable
    var name: String { get }
    func makeConnectionFilter(config: Config, context: FilterBuildContext) throws(FilterConfigError) -> any ConnectionFilter
}
