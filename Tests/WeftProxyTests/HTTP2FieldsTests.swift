import HTTPTypes
import NIOHPACK
import Testing
@testable import WeftProxy

/// Heads between HPACK header blocks (what NIO's HTTP/2 handler reads and writes) and swift-http-types.
@Suite struct HTTP2FieldsTests {
    @Test func aRequestBlockBecomesARequestWithItsPseudoHeadersAndFieldsInOrder() throws {
        let block = HPACKHeaders([(":method", "POST"), (":scheme", "http"), (":authority", "books:8080"), (":path", "/v1/books?x=1"),
                                  ("content-type", "application/grpc"), ("cookie", "a=1"), ("cookie", "b=2")])
        let request = try #require(HTTP2Fields.request(from: block))
        #expect(request.method == .post)
        #expect(request.scheme == "http")
        #expect(request.authority == "books:8080")
        #expect(request.path == "/v1/books?x=1")
        #expect(request.headerFields.map(\.name.canonicalName) == ["content-type", "cookie", "cookie"])
        #expect(request.headerFields[values: .cookie] == ["a=1", "b=2"])
    }

    @Test func anExtendedConnectKeepsItsProtocol() throws {
        let block = HPACKHeaders([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", "/chat"), (":authority", "a")])
        let request = try #require(HTTP2Fields.request(from: block))
        #expect(request.method == .connect)
        #expect(request.extendedConnectProtocol == "websocket")
    }

    @Test(arguments: [
        [(":scheme", "http"), (":path", "/")],                          // no :method
        [(":method", "GE T"), (":scheme", "http"), (":path", "/")],     // not a token
        [(":method", "GET"), (":path", "/"), (":status", "200")],       // a response's pseudo-header
    ])
    func aBlockThatIsNoRequestIsRejected(_ fields: [(String, String)]) {
        #expect(HTTP2Fields.request(from: HPACKHeaders(fields)) == nil)
    }

    @Test func aNeverIndexedFieldStaysNeverIndexedWhenForwarded() throws {
        // RFC 7541 §7.1.3: an intermediary forwards a never-indexed field as never-indexed.
        var block = HPACKHeaders([(":method", "GET"), (":scheme", "http"), (":path", "/")])
        block.add(name: "authorization", value: "Bearer secret", indexing: .neverIndexed)
        block.add(name: "x-trace", value: "1", indexing: .nonIndexable)
        block.add(name: "accept", value: "*/*")
        let request = try #require(HTTP2Fields.request(from: block))
        let forwarded = HTTP2Fields.headers(for: request)
        let indexing = Dictionary(uniqueKeysWithValues: forwarded.map { ($0.name, $0.indexable) })
        #expect(indexing["authorization"] == .neverIndexed)
        #expect(indexing["x-trace"] == .nonIndexable)
        #expect(indexing["accept"] == .indexable)
    }

    @Test func aResponseGoesOutWithItsStatusFirst() {
        var response = HTTPResponse(status: .notFound)
        response.headerFields[.contentType] = "text/plain"
        let block = HTTP2Fields.headers(for: response)
        #expect(block.map(\.name) == [":status", "content-type"])
        #expect(block.first(name: ":status") == "404")
        #expect(HTTP2Fields.response(from: block)?.status == .notFound)
    }
}
