import HTTPTypes
import WeftFilter

/// One event of a tapped request, as a tap stream delivers it.
public struct TapEvent: Sendable {
    /// Which request, where from, where to.
    public struct Context: Sendable, Equatable {
        /// Unique within the proxy's lifetime.
        public var id: UInt64
        public var direction: TrafficDirection
        /// The client's address, `ip:port`.
        public var source: String
        /// The endpoint the request was sent to (empty when answered by the proxy).
        public var destination: String
        /// The named service the request went to, and who serves it, when known.
        public var destinationService: ServiceIdentity?
        public var tls: Bool
        public var route: String?

        public init(id: UInt64, direction: TrafficDirection, source: String, destination: String,
                    destinationService: ServiceIdentity?, tls: Bool, route: String?) {
            self.id = id
            self.direction = direction
            self.source = source
            self.destination = destination
            self.destinationService = destinationService
            self.tls = tls
            self.route = route
        }
    }

    public enum Kind: Sendable {
        /// The request head.
        case requestInit(method: String, scheme: String?, authority: String?, path: String?,
                         headers: [(name: String, value: String)], timestampMicros: UInt64)
        /// The response head, `latencyMicros` after the request head.
        case responseInit(status: Int, latencyMicros: UInt64)
        /// The end of the exchange.
        case responseEnd(grpcStatus: Int?, durationMicros: UInt64, responseBytes: Int, error: String?)
    }

    public var context: Context
    public var kind: Kind

    public init(context: Context, kind: Kind) {
        self.context = context
        self.kind = kind
    }
}
