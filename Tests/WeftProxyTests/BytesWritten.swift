import NIOCore
import NIOEmbedded

/// Gives the writer a real channel context and collects what reaches the socket.
private final class ContextHolder: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    var context: ChannelHandlerContext!
    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
}

/// The text `write` sends through a channel's context, as the socket would get it.
func bytesWritten(_ write: (ChannelHandlerContext) -> Void) throws -> String {
    let channel = EmbeddedChannel()
    let holder = ContextHolder()
    try channel.pipeline.syncOperations.addHandler(holder)
    write(holder.context)
    var text = ""
    while let part = try channel.readOutbound(as: IOData.self) {
        if case .byteBuffer(let buffer) = part { text += String(buffer: buffer) }
    }
    return text
}
