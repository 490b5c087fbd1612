import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP2
import Testing
@testable import WeftProxy

/// A client HTTP/2 connection numbers its streams with the odd IDs up to 2³¹ − 1, about 10⁹ of them:
/// a busy sidecar's long-lived upstream connection can use them all (hours at 40 000 req/s).
@Suite struct HTTP2UpstreamStreamIDTests {
    /// Records how a stream's response went.
    private final class Recorder: UpstreamResponseDelegate {
        var status: Int?
        var ended = false
        var failure: UpstreamFailure?
        func upstreamResponseHead(_ response: consuming HTTPResponse) { status = response.status.code }
        func upstreamResponseBody(_ body: ByteBuffer) {}
        func upstreamResponseEnd(_ trailers: HTTPFields?) { ended = true }
        func upstreamReadComplete() {}
        func upstreamFailed(_ error: UpstreamFailure) { failure = error }
        func upstreamWritabilityChanged() {}
    }

    /// Frame type and stream ID of each frame in `bytes`.
    private func frames(_ bytes: ByteBuffer) -> [(type: UInt8, stream: Int32)] {
        var buffer = bytes
        var frames: [(UInt8, Int32)] = []
        while let length = buffer.readInteger(as: UInt32.self).map({ Int($0 >> 8) }) {
            buffer.moveReaderIndex(to: buffer.readerIndex - 1)
            let type = buffer.readInteger(as: UInt8.self)!
            _ = buffer.readInteger(as: UInt8.self)  // flags
            let stream = buffer.readInteger(as: Int32.self)! & Int32.max
            buffer.moveReaderIndex(forwardBy: length)
            frames.append((type, stream))
        }
        return frames
    }

    private static let headers: UInt8 = 1

    @Test func aConnectionThatRunsOutOfStreamIDsGoesAwayAndClosesAfterItsLastStream() throws {
        let channel = EmbeddedChannel()
        let connection = HTTP2UpstreamConnection(endpoint: ListenAddress(host: "127.0.0.1", port: 8080), channel: channel,
                                                 firstStreamID: HTTP2StreamID(Int32.max - 2))
        try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .client, connectionConfiguration: HTTP2ConnectionSettings.connection))
        try channel.pipeline.syncOperations.addHandler(HTTP2UpstreamConnectionHandler(connection: connection))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        try channel.writeInbound(ByteBuffer(bytes: [0, 0, 0, 4, 0, 0, 0, 0, 0]))  // the server's SETTINGS
        while try channel.readOutbound(as: ByteBuffer.self) != nil {}  // the preface, SETTINGS, its ACK

        // Three requests; the IDs left are 2³¹ − 3 and 2³¹ − 1.
        let recorders = [Recorder(), Recorder(), Recorder()]
        for recorder in recorders {
            let stream = connection.openStream()
            stream.delegate = recorder
            stream.writeHead(HTTPRequest(method: .get, scheme: "http", authority: "app", path: "/"), framing: .none)
            stream.writeEnd(nil)
            stream.flush()
        }
        channel.embeddedEventLoop.run()
        var sent = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { sent.writeBuffer(&part) }
        let opened = frames(sent).filter { $0.type == Self.headers }.map(\.stream)
        #expect(opened == [Int32.max - 2, Int32.max])
        // The third could not start here: it fails (and is retried on a new connection), and the
        // pool hands this connection out no more.
        if case .closed = recorders[2].failure {} else { Issue.record("third stream: \(String(describing: recorders[2].failure))") }
        #expect(connection.isGoingAway && !connection.isUsable)
        #expect(channel.isActive, "two streams are still waiting for their answers")

        // The server answers both (HEADERS :status 200 with END_STREAM): then the connection closes.
        for id in [Int32.max - 2, Int32.max] {
            var frame = ByteBuffer(bytes: [0, 0, 1, 1, 0x5])
            frame.writeInteger(id)
            frame.writeInteger(UInt8(0x88))
            try channel.writeInbound(frame)
        }
        channel.embeddedEventLoop.run()
        #expect(recorders[0].status == 200 && recorders[0].ended && recorders[1].status == 200 && recorders[1].ended)
        #expect(!channel.isActive, "a connection out of stream IDs closes once its last stream is done")
    }
}
