import HTTPTypes
import NIOCore
import NIOEmbedded
import Testing
@testable import WeftProxy

/// The bytes the client connection writes for a response, checked against HTTP/1.1's framing rules.
@Suite struct HTTP1ResponseWriterTests {
    private func response(_ code: Int, _ fields: HTTPFields = [:]) -> HTTPResponse {
        HTTPResponse(status: .init(code: code), headerFields: fields)
    }

    @Test func aBodyWithoutLengthIsChunkedWithTrailers() throws {
        let text = try bytesWritten { context in
            var writer = HTTP1ResponseWriter()
            let staysOpen = writer.writeHead(response(200, [.contentType: "text/plain"]), http10: false, keepAlive: true, toHEAD: false,
                                             context: context)
            #expect(staysOpen)
            writer.writeBody(ByteBuffer(string: "hello world, 26 bytes long"), context: context)
            writer.writeEnd([HTTPField.Name("x-checksum")!: "ok"], context: context, promise: nil)
        }
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
            + "1a\r\nhello world, 26 bytes long\r\n0\r\nx-checksum: ok\r\n\r\n", "\(text.debugDescription)")
    }

    @Test func aLengthIsKeptAndTheBodyGoesAsItIs() throws {
        let text = try bytesWritten { context in
            var writer = HTTP1ResponseWriter()
            let staysOpen = writer.writeHead(response(404, [.contentLength: "2", .transferEncoding: "chunked"]), http10: false,
                                             keepAlive: false, toHEAD: false, context: context)
            #expect(!staysOpen)
            writer.writeBody(ByteBuffer(string: "no"), context: context)
            writer.writeEnd(nil, context: context, promise: nil)
        }
        #expect(text == "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nconnection: close\r\n\r\nno", "\(text.debugDescription)")
    }

    @Test func noContentAndNotModifiedCarryNoBodyAndNoFraming() throws {
        for code in [204, 304] {
            let text = try bytesWritten { context in
                var writer = HTTP1ResponseWriter()
                _ = writer.writeHead(response(code, [.contentLength: "5"]), http10: false, keepAlive: true, toHEAD: false, context: context)
                writer.writeBody(ByteBuffer(string: "stray"), context: context)
                writer.writeEnd(nil, context: context, promise: nil)
            }
            #expect(text.hasPrefix("HTTP/1.1 \(code) "))
            #expect(text.hasSuffix("\r\n\r\n") && !text.lowercased().contains("content-length") && !text.contains("stray"), "\(text)")
        }
    }

    @Test func anHTTP10ClientGetsABodyDelimitedByTheClose() throws {
        let text = try bytesWritten { context in
            var writer = HTTP1ResponseWriter()
            // The body can only end with the close: the connection does not stay open, whatever was wanted.
            let staysOpen = writer.writeHead(response(200), http10: true, keepAlive: true, toHEAD: false, context: context)
            #expect(!staysOpen)
            writer.writeBody(ByteBuffer(string: "abc"), context: context)
            writer.writeEnd(nil, context: context, promise: nil)
        }
        #expect(text == "HTTP/1.0 200 OK\r\n\r\nabc", "\(text.debugDescription)")
    }

    @Test func informationalHeadsAreHTTP11AndLeaveTheFinalResponseToFollow() throws {
        let text = try bytesWritten { context in
            var writer = HTTP1ResponseWriter()
            _ = writer.writeHead(response(100), http10: true, keepAlive: true, toHEAD: false, context: context)
            let staysOpen = writer.writeHead(response(200, [.contentLength: "1"]), http10: true, keepAlive: true, toHEAD: false,
                                             context: context)
            #expect(staysOpen)
            writer.writeBody(ByteBuffer(string: "x"), context: context)
            context.flush()
        }
        #expect(text == "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Length: 1\r\nconnection: keep-alive\r\n\r\nx", "\(text.debugDescription)")
    }

    @Test func aLongReasonPhraseAndLargeFieldsAreWrittenWhole() throws {
        let phrase = String(repeating: "Very ", count: 60) + "Bad"
        let big = String(repeating: "x", count: 6000)
        let text = try bytesWritten { context in
            var writer = HTTP1ResponseWriter()
            _ = writer.writeHead(HTTPResponse(status: .init(code: 599, reasonPhrase: phrase), headerFields: [.server: big, .contentLength: "0"]),
                                 http10: true, keepAlive: true, toHEAD: false, context: context)
            writer.writeEnd(nil, context: context, promise: nil)
        }
        #expect(text == "HTTP/1.0 599 \(phrase)\r\nServer: \(big)\r\nContent-Length: 0\r\nconnection: keep-alive\r\n\r\n")
    }
}
