import NIOCore

/// Sits between an HTTP/2 connection's socket and its `NIOHTTP2Handler` and turns every flush
/// asked for during one event loop tick into one flush at the end of it.
///
/// A proxy's HTTP/2 connection is flushed by *other* connections' reads: each response read from
/// an upstream ends a client stream, each request read from a client starts an upstream stream.
/// NIO's HTTP/2 handler batches the flushes a connection's own reads cause, not these, so a
/// batch of 25 responses would be 25 socket writes (and 25 passes through the HTTP/2 handler's
/// flush). Deferred to the end of the tick (tasks run after the tick's I/O), they are one.
final class FlushCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = Any
    typealias OutboundOut = Any

    private var flushScheduled = false

    func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushNow(context: context)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // What was written before a close goes out before it.
        flushNow(context: context)
        context.close(mode: mode, promise: promise)
    }

    private func flushNow(context: ChannelHandlerContext) {
        guard flushScheduled else { return }
        flushScheduled = false
        context.flush()
    }
}
