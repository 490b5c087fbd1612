import HTTPTypes
import NIOCore
import Testing
import WeftFilter
import WeftFilterTesting
import Yams

/// A tiny filter used to exercise the registry and chain mechanics.
struct TagFilter: HTTPFilter {
    let tag: String
    func onRequestHead(_ request: inout HTTPRequest, context: RequestContext) -> FilterAction {
        let name = HTTPField.Name("x-order")!
        request.headerFields[name] = (request.headerFields[name].map { $0 + "," } ?? "") + tag
        return .continue
    }
    func onResponseHead(_ response: inout HTTPResponse, context: RequestContext) -> StreamAction {
        let name = HTTPField.Name("x-order")!
        response.headerFields[name] = (response.headerFields[name].map { $0 + "," } ?? "") + tag
        return .continue
    }
}

struct TagFactory: FilterFactory {
    struct Config: Decodable {
        var tag: String
        var times: Int?
    }
    let name = "tag"
    func makeFilter(config: Config, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter {
        guard !config.tag.isEmpty else { throw FilterConfigError(field: "tag", message: "must not be empty") }
        return TagFilter(tag: config.tag)
    }
}

/// Writes down every callback it gets, as `tag.callback`, in one log shared by the chain.
final class CallbackLog: @unchecked Sendable {
    var entries: [String] = []
}

struct RecordingFilter: HTTPFilter {
    let tag: String
    let log: CallbackLog
    func onRequestHead(_ request: inout HTTPRequest, context: RequestContext) -> FilterAction {
        log.entries.append("\(tag).requestHead")
        return .continue
    }
    func onDispatch(_ target: UpstreamTarget, context: RequestContext) { log.entries.append("\(tag).dispatch") }
    func onRequestBody(_ chunk: inout ByteBuffer, context: RequestContext) -> StreamAction {
        log.entries.append("\(tag).requestBody")
        return .continue
    }
    func onRequestEnd(_ trailers: inout HTTPFields?, context: RequestContext) -> StreamAction {
        log.entries.append("\(tag).requestEnd")
        return .continue
    }
    func onResponseHead(_ response: inout HTTPResponse, context: RequestContext) -> StreamAction {
        log.entries.append("\(tag).responseHead")
        return .continue
    }
    func onResponseBody(_ chunk: inout ByteBuffer, context: RequestContext) { log.entries.append("\(tag).responseBody") }
    func onResponseEnd(_ trailers: inout HTTPFields?, context: RequestContext) { log.entries.append("\(tag).responseEnd") }
    func onComplete(_ outcome: ExchangeOutcome, context: RequestContext) { log.entries.append("\(tag).complete") }
}

struct DenyFilter: HTTPFilter {
    func onRequestHead(_ request: inout HTTPRequest, context: RequestContext) -> FilterAction {
        .respond(.proxyError(.forbidden, "denied"))
    }
}

struct SlowAllowFilter: HTTPFilter {
    func onRequestHead(_ request: inout HTTPRequest, context: RequestContext) -> FilterAction {
        let promise = context.eventLoop.makePromise(of: FilterAction.self)
        context.eventLoop.execute { promise.succeed(.continue) }
        return .suspend(promise.futureResult)
    }
}

@Suite struct FilterRegistryTests {
    var registry: FilterRegistry {
        var registry = FilterRegistry()
        registry.register(TagFactory())
        return registry
    }
    let context = FilterBuildContext(direction: .outbound, backendNames: [])
    let request = HTTPRequest(method: .get, scheme: "http", authority: "svc", path: "/")

    @Test func unknownFilterIsAnErrorNamingItAndTheKnownOnes() {
        #expect {
            try registry.makeFilter(FilterSpec(name: "rate-limit"), context: context)
        } throws: { error in
            let error = error as! FilterConfigError
            return error.filter == "rate-limit" && error.message.contains("unknown filter") && error.message.contains("tag")
        }
    }

    @Test func configDecodingErrorsNameTheFilterAndTheField() throws {
        let node = try Yams.compose(yaml: "tag: ok\ntimes: many")!
        #expect {
            try registry.makeFilter(FilterSpec(name: "tag", config: node), context: context)
        } throws: { error in
            let error = error as! FilterConfigError
            return error.filter == "tag" && error.field == "times" && error.description.hasPrefix("filter 'tag' field 'times'")
        }
    }

    @Test func missingRequiredFieldIsNamed() throws {
        #expect {
            try registry.makeFilter(FilterSpec(name: "tag"), context: context)
        } throws: { error in
            (error as! FilterConfigError).field == "tag" && (error as! FilterConfigError).message == "is required"
        }
    }

    @Test func factoryValidationErrorsCarryTheFilterName() throws {
        let node = try Yams.compose(yaml: "tag: ''")!
        #expect {
            try registry.makeFilter(FilterSpec(name: "tag", config: node), context: context)
        } throws: { error in
            (error as! FilterConfigError).description == "filter 'tag' field 'tag': must not be empty"
        }
    }

    @Test func requestFiltersRunInOrderAndResponseFiltersInReverse() throws {
        let harness = try FilterHarness(registry: registry, yaml: """
            - name: tag
              config: { tag: a }
            - name: tag
              config: { tag: b }
            """)
        let sent = harness.sendRequest(request)
        #expect(sent.forwardedRequest?.headerFields[HTTPField.Name("x-order")!] == "a,b")
        let received = harness.sendResponse(HTTPResponse(status: .ok), for: sent.context)
        #expect(received.response.headerFields[HTTPField.Name("x-order")!] == "b,a")
    }

    @Test func everyRequestCallbackRunsInChainOrderAndEveryResponseCallbackInReverse() {
        let log = CallbackLog()
        let harness = FilterHarness(filters: ["a", "b", "c"].map { RecordingFilter(tag: $0, log: log) })
        let sent = harness.sendRequest(request, body: ["x"])
        _ = harness.sendResponse(HTTPResponse(status: .ok), body: ["y"], for: sent.context)
        let expected = ["requestHead", "dispatch", "requestBody", "requestEnd"].flatMap { callback in
            ["a", "b", "c"].map { "\($0).\(callback)" }
        } + ["responseHead", "responseBody", "responseEnd", "complete"].flatMap { callback in
            ["c", "b", "a"].map { "\($0).\(callback)" }
        }
        #expect(log.entries == expected)
    }

    @Test func aFilterThatAnswersStopsTheChain() {
        let harness = FilterHarness(filters: [DenyFilter(), TagFilter(tag: "never")])
        let result = harness.sendRequest(request)
        #expect(result.forwardedRequest == nil)
        #expect(result.localResponse?.status == .forbidden)
        #expect(result.localResponse?.headerFields[.weftProxyError] == "denied")
    }

    @Test func aSuspendedFilterResumesTheChainWhereItLeftOff() {
        let harness = FilterHarness(filters: [TagFilter(tag: "a"), SlowAllowFilter(), TagFilter(tag: "b")])
        let result = harness.sendRequest(request)
        #expect(result.forwardedRequest?.headerFields[HTTPField.Name("x-order")!] == "a,b")
    }

    @Test func durationsParseCommonUnits() {
        #expect(ConfigDuration(parsing: "250ms") == .milliseconds(250))
        #expect(ConfigDuration(parsing: "2s") == .seconds(2))
        #expect(ConfigDuration(parsing: "1m") == .seconds(60))
        #expect(ConfigDuration(parsing: "1.5s") == .milliseconds(1500))
        #expect(ConfigDuration(parsing: "soon") == nil)
        #expect(ConfigDuration(parsing: "-1s") == nil)
    }
}
