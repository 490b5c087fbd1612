import HTTPTypes
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
