import HTTPTypes
import Logging
import NIOCore
import WeftFilter
import WeftRegex
import WeftTelemetry

/// What every connection of one listener shares.
final class ListenerContext: Sendable {
    let direction: TrafficDirection
    let store: SnapshotStore
    let pools: UpstreamPools
    let logger: Logger
    let telemetry: Telemetry
    /// Client connections of this listener (`peer="src"`).
    let clientTCP: TCPMetrics
    /// Connections this listener's requests open to upstreams (`peer="dst"`).
    let upstreamTCP: TCPMetrics

    init(direction: TrafficDirection, store: SnapshotStore, pools: UpstreamPools, logger: Logger, telemetry: Telemetry) {
        self.direction = direction
        self.store = store
        self.pools = pools
        self.logger = logger
        self.telemetry = telemetry
        let identity = store.current.identity
        clientTCP = telemetry.metrics.tcp(direction: direction, peer: .src, identity: identity)
        upstreamTCP = telemetry.metrics.tcp(direction: direction, peer: .dst, identity: identity)
    }
}

/// The client side of one exchange: an HTTP/1.1 connection or an HTTP/2 stream.
protocol Downstream: AnyObject {
    var listener: ListenerContext { get }
    /// Regex scratch space owned by the connection.
    var scratch: MatchScratch { get }
    var remoteAddress: SocketAddress? { get }
    var isWritable: Bool { get }
    /// Writes an informational (1xx) or the final response head.
    func writeResponseHead(_ response: HTTPResponse, for exchange: Exchange)
    func writeResponseBody(_ body: ByteBuffer)
    /// Ends the response; the exchange is over.
    func finishResponse(_ trailers: HTTPFields?, for exchange: Exchange)
    /// Ends the exchange abruptly (close the connection, or reset the stream).
    func abort(for exchange: Exchange)
    func flush()
    /// The exchange no longer holds reads back: resume if a read was withheld.
    func resumeReadsIfPossible()
    /// After `101 Switching Protocols` (HTTP/1.1 only): relay bytes from now on.
    func switchProtocols(to upstream: HTTP1UpstreamConnection)
}

/// How an HTTP/1.1 request was framed on the wire, for the HTTP/1.1 upstream that re-frames it.
struct HTTP1Framing: Sendable {
    /// The `Upgrade` protocol the client asked for (`websocket`), when it asked for one.
    var upgrade: String?
    /// The client sent `Transfer-Encoding: chunked`.
    var chunked: Bool

    static let none = HTTP1Framing(upgrade: nil, chunked: false)
}

/// The upstream side of one exchange: a request on an HTTP/1.1 connection or an HTTP/2 stream.
protocol UpstreamStream: AnyObject {
    var endpoint: ListenAddress { get }
    var delegate: (any UpstreamResponseDelegate)? { get set }
    /// The connection served an earlier request: a failure before any response byte may just
    /// mean the upstream closed it while idle, so the request can be sent again once.
    var wasReused: Bool { get }
    var isWritable: Bool { get }
    func writeHead(_ request: HTTPRequest, framing: HTTP1Framing)
    func writeBody(_ body: ByteBuffer)
    func writeEnd(_ trailers: HTTPFields?)
    func flush()
    func pauseReads()
    func resumeReads()
    /// The response ended cleanly: return the connection to the pool when it can serve another request.
    func finished(requestComplete: Bool)
    /// Abandon the request: close the connection or reset the stream.
    func cancel()
}

/// Receives one upstream response.
protocol UpstreamResponseDelegate: AnyObject {
    /// An informational (1xx) or the final response head.
    func upstreamResponseHead(_ response: consuming HTTPResponse)
    func upstreamResponseBody(_ body: ByteBuffer)
    func upstreamResponseEnd(_ trailers: HTTPFields?)
    func upstreamReadComplete()
    /// The connection or stream ended before the response did.
    func upstreamFailed(_ error: UpstreamFailure)
    func upstreamWritabilityChanged()
}

/// Why an upstream stopped before its response ended.
enum UpstreamFailure: Error, CustomStringConvertible {
    case closed
    case reset(String)
    case error(any Error)

    var description: String {
        switch self {
        case .closed: return "closed the connection"
        case .reset(let code): return "reset the stream (\(code))"
        case .error(let error as HTTP2UpstreamError): return "\(error)"
        case .error(let error): return "failed: \(error)"
        }
    }

    /// The upstream does not speak the protocol at all (no point saying "before responding").
    var isProtocolMismatch: Bool {
        if case .error(HTTP2UpstreamError.noHTTP2) = self { return true }
        return false
    }

    /// The upstream answered, wrongly: the connection was not stale, so sending the request again
    /// on a new one would only ask for the same answer.
    var isMalformedAnswer: Bool {
        switch self {
        case .error(HTTP2UpstreamError.malformedResponseHead), .error(HTTP2UpstreamError.malformedTrailers): return true
        default: return false
        }
    }
}
