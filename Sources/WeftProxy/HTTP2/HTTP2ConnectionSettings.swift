import NIOHTTP2
import NIOCore

/// NIO's HTTP/2 connection settings as a proxy needs them, on both sides.
enum HTTP2ConnectionSettings {
    /// A proxy resets every stream whose client went away, often many at once, while the peer may
    /// already be answering each. Frames on a reset stream NIO no longer remembers are a connection
    /// error (STREAM_CLOSED) that takes every other stream on the connection down with it; NIO
    /// remembers 32 by default. Each is a stream ID (4 bytes), looked up only for frames on
    /// streams that are gone.
    static let recentlyResetStreams = 1024

    static var connection: NIOHTTP2Handler.ConnectionConfiguration {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.maximumRecentlyResetStreams = recentlyResetStreams
        return configuration
    }
}

/// Closes an HTTP/2 connection once NIO has sent GOAWAY for a connection error: RFC 9113 §5.4.1
/// says the endpoint MUST close the TCP connection after it, and NIO leaves that to its user.
/// NIO reports the error itself with nothing that tells it from a stream error (those arrive
/// unwrapped when no stream channels are used, and must not take the connection's other streams
/// down), so the GOAWAY's code decides: anything but NO_ERROR (a graceful GOAWAY on drain or idle)
/// is a connection error.
struct CloseAfterErrorGoAway: NIOHTTP2FrameDelegate {
    weak var channel: (any Channel)?
    /// Told at once, before the close: e.g. so no new stream is opened on the connection meanwhile.
    var connectionFailed: (() -> Void)?

    func wroteFrame(_ frame: HTTP2Frame) {
        guard case .goAway(_, let code, _) = frame.payload, code != .noError, let channel else { return }
        connectionFailed?()
        // Not inside NIO's write: on the next tick. The GOAWAY still goes out first: a close
        // flushes what is pending (FlushCoalescingHandler).
        channel.eventLoop.execute { channel.close(promise: nil) }
    }
}
