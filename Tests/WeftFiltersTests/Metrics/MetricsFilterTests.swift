import HTTPTypes
import Testing
import WeftFilter
import WeftFilterTesting
import WeftFilters
import WeftTelemetry
import Yams

@Suite struct MetricsFilterTests {
    let telemetry = Telemetry()

    func harness(direction: TrafficDirection = .outbound) throws -> FilterHarness {
        try FilterHarness(registry: FilterRegistry.builtin(telemetry: telemetry), yaml: """
            - name: route
              config:
                onNoMatch: reject
                routes:
                  - { name: votes, match: { path: { prefix: /vote } }, backend: voting }
                  - { name: list, match: { path: { prefix: /list } }, backend: voting }
            - name: metrics
            """, direction: direction, backendNames: ["voting"])
    }

    func count(_ name: String, _ labels: [String]) -> Int {
        let lines = telemetry.metrics.exposition().split(separator: "\n").filter { line in
            line.hasPrefix(name + "{") && labels.allSatisfy { line.contains($0) }
        }
        return lines.reduce(0) { $0 + (Int($1.split(separator: " ").last ?? "") ?? 0) }
    }

    func get(_ path: String) -> HTTPRequest {
        HTTPRequest(method: .get, scheme: "http", authority: "voting", path: path)
    }

    @Test func everyRequestAndResponseIsCountedPerRouteAndDestination() throws {
        let harness = try harness()
        for status in [200, 200, 503] {
            let sent = harness.sendRequest(get("/vote/doughnut"))
            _ = harness.sendResponse(HTTPResponse(status: .init(code: status)), body: ["ok"], for: sent.context)
        }
        #expect(count("request_total", [#"dst_service="voting""#]) == 3)
        #expect(count("route_request_total", [#"route="votes""#]) == 3)
        #expect(count("response_total", [#"status_code="200""#, #"classification="success""#]) == 2)
        #expect(count("route_response_total", [#"route="votes""#, #"status_code="503""#, #"classification="failure""#]) == 1)
        #expect(count("response_latency_ms_count", [#"dst_service="voting""#]) == 3)
    }

    /// The filter keeps the series and counters it used last at hand: requests that alternate
    /// between routes and statuses must still land each in its own series.
    @Test func requestsAlternatingBetweenRoutesAndStatusesAreCountedInTheirOwnSeries() throws {
        let harness = try harness()
        for (path, status) in [("/vote", 200), ("/list", 503), ("/vote", 503), ("/list", 200), ("/vote", 200)] {
            let sent = harness.sendRequest(get(path))
            _ = harness.sendResponse(HTTPResponse(status: .init(code: status)), body: [], for: sent.context)
        }
        #expect(count("route_request_total", [#"route="votes""#]) == 3)
        #expect(count("route_request_total", [#"route="list""#]) == 2)
        #expect(count("route_response_total", [#"route="votes""#, #"status_code="200""#]) == 2)
        #expect(count("route_response_total", [#"route="votes""#, #"status_code="503""#]) == 1)
        #expect(count("route_response_total", [#"route="list""#, #"status_code="503""#]) == 1)
        #expect(count("route_response_total", [#"route="list""#, #"status_code="200""#]) == 1)
        #expect(count("response_total", [#"status_code="200""#]) == 3)
        #expect(count("response_total", [#"status_code="503""#, #"classification="failure""#]) == 2)
    }

    /// Inbound series have no destination service; the filter keeps them by route alone.
    @Test func inboundRequestsAlternatingBetweenRoutesAreCountedPerRouteWithoutADestination() throws {
        let harness = try harness(direction: .inbound)
        for (path, status) in [("/vote", 200), ("/list", 503), ("/vote", 200)] {
            let sent = harness.sendRequest(get(path))
            _ = harness.sendResponse(HTTPResponse(status: .init(code: status)), body: [], for: sent.context)
        }
        #expect(count("route_request_total", [#"route="votes""#, #"direction="inbound""#]) == 2)
        #expect(count("route_request_total", [#"route="list""#, #"direction="inbound""#]) == 1)
        #expect(count("route_response_total", [#"route="list""#, #"status_code="503""#]) == 1)
        #expect(count("request_total", [#"direction="inbound""#]) == 3)
    }

    @Test func requestsTheProxyAnswersItselfAreCountedOnceWithTheirStatus() throws {
        let harness = try harness()
        let rejected = harness.sendRequest(get("/elsewhere"))
        #expect(rejected.localResponse?.status == .notFound)
        harness.complete(rejected, outcome: .responded(status: 404))
        #expect(count("request_total", []) == 1)
        #expect(count("response_total", [#"status_code="404""#]) == 1)
    }

    @Test func anExchangeThatBreaksOffIsAFailure() throws {
        let harness = try harness()
        let sent = harness.sendRequest(get("/vote/x"))
        harness.fail("upstream reset the stream", for: sent.context)
        #expect(count("response_total", [#"classification="failure""#]) == 1)
        #expect(count("response_total", ["status_code"]) == 0)
    }

    @Test func aGRPCErrorStatusInTrailersIsAFailure() throws {
        let harness = try harness()
        var request = get("/vote/x")
        request.headerFields[.contentType] = "application/grpc"
        let sent = harness.sendRequest(request)
        var trailers = HTTPFields()
        trailers[HTTPField.Name("grpc-status")!] = "14"
        _ = harness.sendResponse(HTTPResponse(status: .ok), body: [], trailers: trailers, for: sent.context)
        #expect(count("response_total", [#"grpc_status_code="14""#, #"classification="failure""#]) == 1)
    }

    @Test func theFilterTakesNoOptions() throws {
        #expect(throws: FilterConfigError.self) {
            _ = try FilterRegistry.builtin(telemetry: telemetry).makeFilter(
                FilterSpec(name: "metrics", config: try Yams.compose(yaml: "buckets: [1, 2]")!),
                context: FilterBuildContext(direction: .inbound, backendNames: []))
        }
    }
}
