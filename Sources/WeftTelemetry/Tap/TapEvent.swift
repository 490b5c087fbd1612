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

    public enum Kind: Sendable, Equatable {
        /// The request head.
        case requestInit(method: String, scheme: String?, authority: String?, path: String?,
                         headers: [(name: String, value: String)], timestampMicros: UInt64)
        /// The response head, `latencyMicros` after the request head.
        case responseInit(status: Int, latencyMicros: UInt64)
        /// The end of the exchange.
        case responseEnd(grpcStatus: Int?, durationMicros: UInt64, responseBytes: Int, error: String?)
        /// Events this tap lost since the last report because its reader was too slow.
        case dropped(count: Int)

        public static func == (lhs: Kind, rhs: Kind) -> Bool {
            switch (lhs, rhs) {
            case let (.requestInit(m1, s1, a1, p1, h1, t1), .requestInit(m2, s2, a2, p2, h2, t2)):
                return m1 == m2 && s1 == s2 && a1 == a2 && p1 == p2 && t1 == t2
                    && h1.map(\.name) == h2.map(\.name) && h1.map(\.value) == h2.map(\.value)
            case let (.responseInit(s1, l1), .responseInit(s2, l2)): return s1 == s2 && l1 == l2
            case let (.responseEnd(g1, d1, b1, e1), .responseEnd(g2, d2, b2, e2)):
                return g1 == g2 && d1 == d2 && b1 == b2 && e1 == e2
            case let (.dropped(c1), .dropped(c2)): return c1 == c2
            default: return false
            }
        }
    }

    public var context: Context
    public var kind: Kind

    public init(context: Context, kind: Kind) {
        self.context = context
        self.kind = kind
    }
}
