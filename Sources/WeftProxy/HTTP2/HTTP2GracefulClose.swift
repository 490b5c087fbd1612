import NIOCore
import NIOHTTP2

/// How a client HTTP/2 connection ends when the proxy ends it: idle for the idle timeout, or the
/// server draining. RFC 9113 §6.8's graceful shutdown, as NIO's connection manager does it: a
/// GOAWAY naming the highest stream ID possible and a PING; once the PING is acknowledged, every
/// stream the client opened before it saw the GOAWAY has arrived, and a second GOAWAY names the
/// last one; the connection closes when those streams are done (or, draining, when the grace
/// period is over).
///
/// Kept by ``HTTP2DownstreamConnectionHandler`` instead of NIO's connection manager: the manager
/// is one more handler every frame, write, flush and stream event of every request passes
/// through, and the connection's handler already knows when its last stream ends.
struct HTTP2GracefulClose {
    enum Phase: Equatable {
        case open
        /// The first GOAWAY and the PING went out; streams may still open until the PING comes back.
        case awaitingPingAck
        /// The final GOAWAY went out: no new streams; close once the open ones are done.
        case closing
    }

    /// The PING payload that marks the first GOAWAY's acknowledgement (NIO's manager uses its own).
    static let pingData = HTTP2PingData(withInteger: 0x5745_4654_434C_4F53)  // "WEFTCLOS"

    private(set) var phase = Phase.open
    /// The highest stream ID the client has opened: the final GOAWAY's last stream.
    private(set) var lastStreamID = HTTP2StreamID(0)

    /// Notes a stream the client opened.
    mutating func streamOpened(_ id: HTTP2StreamID) {
        if id > lastStreamID { lastStreamID = id }
    }

    /// Starts the shutdown: the frames to send now, or none if it has started already.
    mutating func start() -> [HTTP2Frame] {
        guard phase == .open else { return [] }
        phase = .awaitingPingAck
        return [HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil)),
                HTTP2Frame(streamID: .rootStream, payload: .ping(Self.pingData, ack: false))]
    }

    /// A PING acknowledgement arrived: the final GOAWAY to send, if it was ours.
    mutating func pingAcknowledged(_ data: HTTP2PingData) -> HTTP2Frame? {
        guard phase == .awaitingPingAck, data == Self.pingData else { return nil }
        phase = .closing
        return HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil))
    }
}
