import NIOHTTP2

/// NIO's HTTP/2 connection settings as a proxy needs them, on both sides.
enum HTTP2ConnectionSettings {
    /// A proxy resets every stream whose client went away, often many at once, while the peer may
    /// already be answering each. Frames on a reset stream NIO no longer remembers are a connection
    /// error (STREAM_CLOSED) that takes every other stream on the connection down with it; NIO
    /// remembers 32 by default. Each is a stream ID (4 bytes), looked up only for frames on
    /// streams that are gone.
    static let recentlyResetStreams = 1024

    /// Built once, shared by every connection. NIO's header block checks are off: `HTTP2Fields`
    /// makes them on each block received, in the pass that converts it; NIO would make them again
    /// on every block sent (a tenth of the proxy's CPU time per HTTP/2 request, measured).
    /// Content-length checks stay NIO's.
    static let connection: NIOHTTP2Handler.ConnectionConfiguration = {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.maximumRecentlyResetStreams = recentlyResetStreams
        configuration.headerBlockValidation = .disabled
        return configuration
    }()
}
