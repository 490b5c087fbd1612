import NIOCore
import Testing
import WeftFilter
@testable import WeftFilters
import Yams

@Suite struct ProtocolDetectFilterTests {
    let filter = ProtocolDetectFilter(timeout: .seconds(10), opaquePorts: Set(ProtocolDetectConfig.defaultOpaquePorts))

    func classify(_ text: String) -> DetectedProtocol? {
        filter.classify(ByteBuffer(string: text), destinationPort: 8080)
    }

    @Test func theHTTP2PrefaceIsHTTP2OnlyOnceComplete() {
        #expect(classify("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == .http2)
        // Its first line also parses as a request line: without the rest it must wait.
        #expect(classify("PRI * HTTP/2.0\r\n") == nil)
        #expect(classify("PRI") == nil)
    }

    @Test func aRequestLineIsHTTP1() {
        #expect(classify("GET /index.html HTTP/1.1\r\nHost: x\r\n") == .http1)
        #expect(classify("POST /api/vote?choice=x HTTP/1.0\r\n") == .http1)
        #expect(classify("OPTIONS * HTTP/1.1\n") == .http1)
    }

    @Test func aPartialRequestLineWaitsForMoreBytes() {
        #expect(classify("GET /very/long/pa") == nil)
        #expect(classify("G") == nil)
    }

    @Test func aRequestTargetLongerThanTheDetectionWindowIsStillHTTP1() {
        #expect(classify("GET /" + String(repeating: "a", count: 2000)) == .http1)
    }

    @Test func malformedHTTPIsHandedToTheHTTPParserForA400() {
        #expect(classify("GET /a b c HTTP/1.1 garbage\r\n") == .http1)
    }

    @Test func anythingElseIsOpaque() {
        #expect(classify("\u{16}\u{03}\u{01}\u{02}\u{00}") == .opaque)  // a TLS ClientHello
        #expect(classify("hello world\r\n") == .opaque)
        #expect(classify("SSH-2.0-OpenSSH_9.2\r\n") == .opaque)
        #expect(classify(String(repeating: "x", count: 1100)) == .opaque)
    }

    @Test func opaquePortsSkipDetection() {
        #expect(filter.protocolWithoutDetection(destinationPort: 3306) == .opaque)
        #expect(filter.protocolWithoutDetection(destinationPort: 8080) == nil)
        #expect(filter.timeoutProtocol == .opaque)
    }

    @Test func configIsValidated() throws {
        let registry = FilterRegistry.builtin()
        let context = FilterBuildContext(direction: .inbound, backendNames: [])
        #expect {
            try registry.makeConnectionFilter(FilterSpec(name: "protocol-detect", config: try Yams.compose(yaml: "opaquePorts: [0]")!), context: context)
        } throws: { error in
            (error as! FilterConfigError).field == "opaquePorts[0]"
        }
        let custom = try registry.makeConnectionFilter(
            FilterSpec(name: "protocol-detect", config: try Yams.compose(yaml: "timeout: 250ms\nopaquePorts: [9000]")!), context: context)
        #expect(custom.detectionTimeout == .milliseconds(250))
        #expect(custom.protocolWithoutDetection(destinationPort: 9000) == .opaque)
        #expect(custom.protocolWithoutDetection(destinationPort: 3306) == nil)
    }
}
