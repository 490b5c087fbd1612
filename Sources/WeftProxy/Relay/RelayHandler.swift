import NIOCore

/// Relays raw bytes between two channels on the same event loop (upgraded connections now,
/// opaque TCP later), with backpressure: a side reads only while its partner can write.
final class RelayHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var readGate = ReadGate()
    private var inputClosed = false

    private init() {}

    /// Two handlers that forward to each other.
    static func pair() -> (RelayHandler, RelayHandler) {
        let first = RelayHandler()
        let second = RelayHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.write(data, promise: nil)
    }


    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Half-close: this side will send no more; tell the other side, keep reading its answers.
        inputClosed = true
        partner?.context?.flush()
        partner?.context?.close(mode: .output, promise: nil)
        if partner?.inputClosed == true {
            context.close(promise: nil)
            partner?.context?.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        partner = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.resumeRead()
        }
    }

    func read(context: ChannelHandlerContext) {
        if readGate.admits(holding: partner?.context?.channel.isWritable == false) { context.read() }
    }

    private func resumeRead() {
        if readGate.releases() { context?.read() }
    }
}
