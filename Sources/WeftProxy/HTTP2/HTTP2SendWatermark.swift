import NIOCore

/// A stream (either side of the proxy) that counts the body bytes it has handed to NIO and that
/// are not on the wire yet: NIO holds DATA the peer's flow-control window does not admit, so above
/// ``HTTP2SendWatermark/limit`` the stream says it is unwritable and its exchange stops reading
/// the other side.
protocol HTTP2SendWatermarked: AnyObject {
    var unsentBodyBytes: Int { get set }
    /// The unsent bytes fell back below the watermark.
    func unsentBodyDrained()
}

enum HTTP2SendWatermark {
    static let limit = 64 * 1024
}

extension HTTP2SendWatermarked {
    var isBelowSendWatermark: Bool { unsentBodyBytes < HTTP2SendWatermark.limit }

    /// The promise to write `size` body bytes with: they count as unsent until it completes.
    func unsentBodyPromise(_ size: Int, on eventLoop: any EventLoop) -> EventLoopPromise<Void> {
        unsentBodyBytes += size
        let written = eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { _ in
            let wasBelow = self.isBelowSendWatermark
            self.unsentBodyBytes -= size
            if !wasBelow && self.isBelowSendWatermark { self.unsentBodyDrained() }
        }
        return written
    }
}
