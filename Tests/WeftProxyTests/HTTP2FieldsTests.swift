import HTTPTypes
import NIOHPACK
import Testing
@testable import WeftProxy

/// Heads between HPACK header blocks (what NIO's HTTP/2 handler reads and writes) and swift-http-types.
@Suite struct HTTP2FieldsTests {
    @Test func aRequestBlockBecomesARequestWithItsPseudoHeadersAndFieldsInOrder() throws {
        let block = HPACKHeaders([(":method", "POST"), (":scheme", "http"), (":authority", "books:8080"), (":path", "/v1/books?x=1"),
                                  ("content-type", "application/grpc"), ("cookie", "a=1"), ("cookie", "b=2")])
        let request = try HTTP2Fields.request(from: block)
        #expect(request.method == .post)
        #expect(request.scheme == "http")
        #expect(request.authority == "books:8080")
        #expect(request.path == "/v1/books?x=1")
        #expect(request.headerFields.map(\.name.canonicalName) == ["content-type", "cookie", "cookie"])
        #expect(request.headerFields[values: .cookie] == ["a=1", "b=2"])
    }

    @Test func aConnectRequestNamesOnlyItsAuthority() throws {
        let request = try HTTP2Fields.request(from: HPACKHeaders([(":method", "CONNECT"), (":authority", "db:5432")]))
        #expect(request.method == .connect)
        #expect(request.authority == "db:5432")
        #expect(request.path == nil)
    }

    typealias Block = [(String, String)]

    /// What RFC 9113 calls malformed (§8.1.1, §8.2, §8.3), each a stream error naming what was wrong.
    static let malformedRequests: [(Block, MalformedHeaderBlock)] = [
        ([(":scheme", "http"), (":path", "/")], MalformedHeaderBlock.missingPseudoHeader(":method")),
        ([(":method", "GET"), (":path", "/")], .missingPseudoHeader(":scheme")),
        ([(":method", "GET"), (":scheme", "http")], .missingPseudoHeader(":path")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "")], .missingPseudoHeader(":path")),
        ([(":method", "GE(T"), (":scheme", "http"), (":path", "/")], .invalidValue(":method")),
        ([(":method", "GET"), (":method", "GET"), (":scheme", "http"), (":path", "/")], .duplicatePseudoHeader(":method")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":status", "200")], .unknownPseudoHeader(":status")),
        // The proxy does not offer extended CONNECT (RFC 8441), so `:protocol` is not allowed.
        ([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", "/"), (":authority", "a")],
         .unknownPseudoHeader(":protocol")),
        ([(":method", "CONNECT"), (":scheme", "http"), (":authority", "a:1")], .pseudoHeaderNotAllowed(":scheme", "CONNECT")),
        ([(":method", "CONNECT")], .missingPseudoHeader(":authority")),
        ([(":method", "GET"), (":scheme", "http"), ("accept", "*/*"), (":path", "/")], .pseudoHeaderAfterFields(":path")),
        // Smuggling into an HTTP/1.1 upstream's request line: no space or control byte in a pseudo-header.
        ([(":method", "GET"), (":scheme", "http"), (":path", "/a HTTP/1.1\r\nx: y")], .invalidValue(":path")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/a b")], .invalidValue(":path")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("x-bad", "a\r\nhost: evil")], .invalidValue("x-bad")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("x-nul", "a\u{0}b")], .invalidValue("x-nul")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("X-Upper", "1")], .invalidName("X-Upper")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("bad name", "1")], .invalidName("bad name")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("", "1")], .invalidName("")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("connection", "close")], .connectionSpecific("connection")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("keep-alive", "5")], .connectionSpecific("keep-alive")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("proxy-connection", "x")], .connectionSpecific("proxy-connection")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("transfer-encoding", "chunked")], .connectionSpecific("transfer-encoding")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("upgrade", "h2c")], .connectionSpecific("upgrade")),
        ([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("te", "gzip")], .connectionSpecific("te")),
    ]

    @Test(arguments: malformedRequests)
    func aMalformedRequestBlockIsRejectedWithItsReason(_ fields: Block, _ reason: MalformedHeaderBlock) {
        #expect(throws: reason) { try HTTP2Fields.request(from: HPACKHeaders(fields)) }
    }

    @Test func teTrailersIsTheOneConnectionFieldARequestMayCarry() throws {
        let request = try HTTP2Fields.request(from: HPACKHeaders([(":method", "POST"), (":scheme", "http"), (":path", "/s/M"), ("te", "trailers")]))
        #expect(request.headerFields[.te] == "trailers")
    }

    static let malformedResponses: [(Block, MalformedHeaderBlock)] = [
        ([("content-type", "text/plain")], MalformedHeaderBlock.missingPseudoHeader(":status")),
        ([(":status", "20")], .invalidValue(":status")),
        ([(":status", "2000")], .invalidValue(":status")),
        ([(":status", "099")], .invalidValue(":status")),
        ([(":status", "200"), (":status", "200")], .duplicatePseudoHeader(":status")),
        ([(":status", "200"), (":path", "/")], .unknownPseudoHeader(":path")),
        ([("server", "x"), (":status", "200")], .pseudoHeaderAfterFields(":status")),
        ([(":status", "200"), ("X-Bad", "x")], .invalidName("X-Bad")),
        ([(":status", "200"), ("transfer-encoding", "chunked")], .connectionSpecific("transfer-encoding")),
        ([(":status", "200"), ("set-cookie", "a=1\nb=2")], .invalidValue("set-cookie")),
    ]

    @Test(arguments: malformedResponses)
    func aMalformedResponseBlockIsRejectedWithItsReason(_ fields: Block, _ reason: MalformedHeaderBlock) {
        #expect(throws: reason) { try HTTP2Fields.response(from: HPACKHeaders(fields)) }
    }

    @Test func trailersCarryNoPseudoHeaders() throws {
        let fields = try HTTP2Fields.trailers(from: HPACKHeaders([("grpc-status", "0"), ("grpc-message", "")]), inRequest: false)
        #expect(fields[GRPC.statusField] == "0")
        #expect(throws: MalformedHeaderBlock.pseudoHeaderInTrailers(":status")) {
            try HTTP2Fields.trailers(from: HPACKHeaders([("grpc-status", "0"), (":status", "200")]), inRequest: false)
        }
        #expect(throws: MalformedHeaderBlock.connectionSpecific("connection")) {
            try HTTP2Fields.trailers(from: HPACKHeaders([("connection", "close")]), inRequest: true)
        }
    }

    @Test func aNeverIndexedFieldStaysNeverIndexedWhenForwarded() throws {
        // RFC 7541 §7.1.3: an intermediary forwards a never-indexed field as never-indexed.
        var block = HPACKHeaders([(":method", "GET"), (":scheme", "http"), (":path", "/")])
        block.add(name: "authorization", value: "Bearer secret", indexing: .neverIndexed)
        block.add(name: "x-trace", value: "1", indexing: .nonIndexable)
        block.add(name: "accept", value: "*/*")
        let request = try HTTP2Fields.request(from: block)
        let forwarded = HTTP2Fields.headers(for: request)
        let indexing = Dictionary(uniqueKeysWithValues: forwarded.map { ($0.name, $0.indexable) })
        #expect(indexing["authorization"] == .neverIndexed)
        #expect(indexing["x-trace"] == .nonIndexable)
        #expect(indexing["accept"] == .indexable)
    }

    @Test func aResponseGoesOutWithItsStatusFirst() throws {
        var response = HTTPResponse(status: .notFound)
        response.headerFields[.contentType] = "text/plain"
        let block = HTTP2Fields.headers(for: response)
        #expect(block.map(\.name) == [":status", "content-type"])
        #expect(block.first(name: ":status") == "404")
        #expect(try HTTP2Fields.response(from: block).status == .notFound)
    }
}
