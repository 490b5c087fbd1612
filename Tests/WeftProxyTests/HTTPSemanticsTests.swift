import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing
import WeftFilter
@testable import WeftProxy

@Suite struct HopByHopTests {
    @Test func connectionSpecificFieldsAndTheOnesConnectionNamesAreRemoved() {
        var fields = HTTPFields()
        fields[.connection] = "keep-alive, X-Session-Hop"
        fields[HTTPField.Name("keep-alive")!] = "timeout=5"
        fields[HTTPField.Name("x-session-hop")!] = "1"
        fields[HTTPField.Name("proxy-connection")!] = "keep-alive"
        fields[.upgrade] = "websocket"
        fields[.transferEncoding] = "chunked"
        fields[.contentType] = "text/plain"
        HopByHop.strip(&fields)
        #expect(fields.map(\.name) == [.contentType])
    }

    @Test func teTrailersSurvivesForGRPCButOtherTEValuesGo() {
        var grpc = HTTPFields()
        grpc[.te] = "trailers"
        HopByHop.strip(&grpc)
        #expect(grpc[.te] == "trailers")
        var other = HTTPFields()
        other[.te] = "gzip"
        HopByHop.strip(&other)
        #expect(other[.te] == nil)
    }

    @Test func aLoneConnectionKeepAliveGoesAndTheOtherFieldsKeepTheirOrder() {
        var fields: HTTPFields = [.server: "nginx", .connection: "Keep-Alive", .contentType: "text/plain", .contentLength: "64"]
        HopByHop.strip(&fields)
        #expect(fields.map(\.name) == [.server, .contentType, .contentLength])
    }

    @Test func everyConnectionFieldAndEveryNameTheyListGo() {
        var fields = HTTPFields()
        fields.append(HTTPField(name: .connection, value: "close"))
        fields.append(HTTPField(name: HTTPField.Name("x-a")!, value: "1"))
        fields.append(HTTPField(name: .connection, value: " x-a "))
        fields.append(HTTPField(name: .accept, value: "*/*"))
        HopByHop.strip(&fields)
        #expect(fields.map(\.name) == [.accept])
    }

    @Test func anotherTEValueGoesWhileTETrailersStays() {
        var fields = HTTPFields()
        fields.append(HTTPField(name: .te, value: "trailers"))
        fields.append(HTTPField(name: .te, value: "gzip"))
        fields.append(HTTPField(name: .accept, value: "*/*"))
        HopByHop.strip(&fields)
        #expect(fields.map(\.value) == ["trailers", "*/*"])
    }

    @Test func blanksAroundTextAreTrimmedAndTheRestKeptWhole() {
        #expect(" \tkeep-alive \t".trimmingBlanks() == "keep-alive")
        #expect("x-a, x-b".trimmingBlanks() == "x-a, x-b")
        #expect(" \t ".trimmingBlanks() == "")
        #expect(" café ".trimmingBlanks() == "café")
        #expect("a, b ".split(separator: ",")[1].trimmingBlanks() == "b")
    }

    @Test func connectionCannotRemoveContentLength() {
        var fields = HTTPFields()
        fields[.connection] = "content-length"
        fields[.contentLength] = "5"
        HopByHop.strip(&fields)
        #expect(fields[.contentLength] == "5")
    }
}

@Suite struct GRPCSemanticsTests {
    @Test(arguments: [("100m", TimeAmount.milliseconds(100)), ("2S", .seconds(2)), ("1H", .hours(1)), ("5u", .microseconds(5)), ("7n", .nanoseconds(7))])
    func grpcTimeoutUnitsParse(_ case: (String, TimeAmount)) {
        #expect(GRPC.parseTimeout(`case`.0) == `case`.1)
    }

    @Test func malformedGRPCTimeoutsAreIgnored() {
        #expect(GRPC.parseTimeout("") == nil)
        #expect(GRPC.parseTimeout("10") == nil)
        #expect(GRPC.parseTimeout("123456789S") == nil)  // more than 8 digits
        #expect(GRPC.parseTimeout("-1S") == nil)
    }

    @Test func proxyFailuresMapToTheStatusesGRPCClientsExpect() {
        #expect(GRPC.status(for: .badGateway) == .unavailable)
        #expect(GRPC.status(for: .serviceUnavailable) == .unavailable)
        #expect(GRPC.status(for: .gatewayTimeout) == .deadlineExceeded)
        #expect(GRPC.status(for: .notFound) == .unimplemented)
    }

    @Test func aTrailersOnlyAnswerCarriesStatusMessageAndTheProxyError() {
        let head = GRPC.trailersOnly(for: .proxyError(.badGateway, "connect to 127.0.0.1:9 failed: connection refused"))
        #expect(head.status == .ok)
        #expect(head.headerFields[.contentType] == "application/grpc")
        #expect(head.headerFields[GRPC.statusField] == "14")
        #expect(head.headerFields[GRPC.messageField] == "connect to 127.0.0.1:9 failed: connection refused")
        #expect(head.headerFields[.weftProxyError] != nil)
    }

    @Test func grpcMessagesArePercentEncoded() {
        #expect(GRPC.percentEncoded("100% done ✓") == "100%25 done %E2%9C%93")
    }
}

@Suite struct HTTP1RequestConversionTests {
    @Test func originFormKeepsThePathAndTakesTheAuthorityFromHost() throws {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "web.emojivoto:8080")
        headers.add(name: "Accept", value: "*/*")
        let request = try #require(HTTP1DownstreamHandler.makeRequest(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/api/vote?choice=x", headers: headers)))
        #expect(request.authority == "web.emojivoto:8080")
        #expect(request.path == "/api/vote?choice=x")
        #expect(request.headerFields[HTTPField.Name("host")!] == nil)
        #expect(request.headerFields[.accept] == "*/*")
    }

    @Test func absoluteFormIsSplitIntoAuthorityAndPath() throws {
        let request = try #require(HTTP1DownstreamHandler.makeRequest(HTTPRequestHead(version: .http1_1, method: .GET, uri: "http://users.svc:8080/users/42?x=1")))
        #expect(request.authority == "users.svc:8080")
        #expect(request.path == "/users/42?x=1")
        let bare = try #require(HTTP1DownstreamHandler.makeRequest(HTTPRequestHead(version: .http1_1, method: .GET, uri: "http://users.svc?q")))
        #expect(bare.path == "/?q")
    }

    @Test func onlyTheFirstHostHeaderBecomesTheAuthorityWhereverItIs() throws {
        let headers = HTTPHeaders([("Accept", "*/*"), ("HOST", "web:8080"), ("X-Trace", "1"), ("host", "other")])
        let request = try #require(HTTP1DownstreamHandler.makeRequest(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: headers)))
        #expect(request.authority == "web:8080")
        #expect(request.headerFields.map(\.name.canonicalName) == ["accept", "x-trace", "host"])
        #expect(request.headerFields[HTTPField.Name("host")!] == "other")
    }

    @Test func aResponseHeadKeepsEveryValidHeaderInOrderAndRejectsAFourDigitStatus() throws {
        let headers = HTTPHeaders([
            ("Server", "nginx"), ("Host", "kept: a response has no authority"),
            ("Bad Name", "dropped: not a token"), ("content-type", "text/plain"),
        ])
        let response = try #require(HTTPResponse(http1: HTTPResponseHead(version: .http1_1, status: .init(statusCode: 299, reasonPhrase: "Mostly Fine"), headers: headers)))
        #expect(response.status.code == 299)
        #expect(response.status.reasonPhrase == "Mostly Fine")
        #expect(response.headerFields.map(\.name.canonicalName) == ["server", "host", "content-type"])
        #expect(response.headerFields[.server] == "nginx")
        #expect(HTTPResponse(http1: HTTPResponseHead(version: .http1_1, status: .init(statusCode: 1000))) == nil)
    }

    @Test func hopByHopFieldsAreLeftOutAsTheyArriveExceptWhatStripMustSee() throws {
        let headers = HTTPHeaders([
            ("Connection", " Keep-Alive "), ("Keep-Alive", "timeout=5"), ("Transfer-Encoding", "chunked"),
            ("Proxy-Connection", "close"), ("Upgrade", "h2c"), ("TE", "trailers"), ("Server", "nginx"),
        ])
        let response = try #require(HTTPResponse(http1: HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
        #expect(response.headerFields.map(\.name.canonicalName) == ["te", "server"])
        // A 101 is passed on as it is: the client needs its Upgrade and Connection.
        let switching = try #require(HTTPResponse(http1: HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers)))
        #expect(switching.headerFields.count == headers.count)
        // A Connection that names fields stays, so that strip removes it and what it names.
        var named = HTTPFields(http1: HTTPHeaders([("Connection", "close, X-Hop"), ("X-Hop", "1"), ("Accept", "*/*")]))
        #expect(named.map(\.name.canonicalName) == ["connection", "x-hop", "accept"])
        HopByHop.strip(&named)
        #expect(named.map(\.name.canonicalName) == ["accept"])
    }

    @Test func anUnusableTargetIsRejected() {
        #expect(HTTP1DownstreamHandler.makeRequest(HTTPRequestHead(version: .http1_1, method: .GET, uri: "users/42")) == nil)
    }

    @Test func connectionTokensCompareWithoutCase() {
        #expect("Upgrade".caseInsensitiveEquals("upgrade"))
        #expect(!"upgrades".caseInsensitiveEquals("upgrade"))
        #expect(!"upgr@de".caseInsensitiveEquals("upgr`de"))
        #expect("x, Keep-Alive".split(separator: ",")[1].trimmingBlanks().caseInsensitiveEquals("keep-alive"))
        #expect(!"keep-alive".caseInsensitiveEquals("keep-alivé"))
        #expect("".caseInsensitiveEquals(""))
    }
}
