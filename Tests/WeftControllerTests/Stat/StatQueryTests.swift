import Foundation
import Testing
@testable import WeftController

@Suite struct StatQueryTests {
    /// A proxy's series: inbound from its workload, outbound to `to` when given.
    func responses(_ workload: String, to destination: String? = nil, success: Double, failure: Double, pod: String? = nil) -> [Sample] {
        var labels = ["namespace": "ns", "deployment": workload, "pod": pod ?? "\(workload)-0", "direction": destination == nil ? "inbound" : "outbound"]
        if let destination {
            labels["dst_namespace"] = "ns"
            labels["dst_deployment"] = destination
            labels["dst_service"] = destination
        }
        var ok = labels, failed = labels
        ok["classification"] = "success"
        failed["classification"] = "failure"
        return [Sample(name: "response_total", labels: ok, value: success), Sample(name: "response_total", labels: failed, value: failure)]
    }

    var window: MetricsWindow {
        MetricsWindow(increases: responses("web", success: 6, failure: 2)
            + responses("api", success: 10, failure: 0)
            + responses("web", to: "api", success: 5, failure: 1)
            + responses("cron", to: "api", success: 3, failure: 3),
            gauges: [], seconds: 10)
    }

    func rows(_ request: StatRequest) throws -> [String: StatRow] {
        Dictionary(uniqueKeysWithValues: try StatQuery.rows(request, window: window, mesh: nil, proxies: []).map { ($0.name, $0) })
    }

    @Test func plainRowsAreEachWorkloadsInboundTraffic() throws {
        let rows = try rows(StatRequest(resource: ResourceRef(kind: .workload("deployment"), name: nil, namespace: "ns")))
        #expect(rows["web"]?.requests == 8)
        #expect(rows["web"]?.successRate == 0.75)
        #expect(rows["web"]?.rps == 0.8)
        #expect(rows["api"]?.successes == 10)
        #expect(rows["cron"] == nil)
    }

    @Test func fromRowsAreTheDestinationsOfTheSourcesOutboundTraffic() throws {
        let rows = try rows(StatRequest(resource: ResourceRef(kind: .workload("deployment"), name: nil, namespace: nil),
                                        from: ResourceRef(kind: .workload("deployment"), name: "web", namespace: nil)))
        #expect(Array(rows.keys) == ["api"])
        #expect(rows["api"]?.requests == 6)
        #expect(rows["api"]?.successes == 5)
    }

    @Test func toRowsAreTheCallersOfTheDestination() throws {
        let rows = try rows(StatRequest(resource: ResourceRef(kind: .workload("deployment"), name: nil, namespace: nil),
                                        to: ResourceRef(kind: .workload("deployment"), name: "api", namespace: "ns")))
        #expect(rows["web"]?.successRate.map { ($0 * 1000).rounded() } == 833)
        #expect(rows["cron"]?.successRate == 0.5)
    }

    @Test func edgesJoinEachCallerToEachCallee() throws {
        let edges = try StatQuery.edges(kind: .workload("deployment"), namespace: nil, window: window)
        #expect(edges.map { "\($0.source)>\($0.destination) \($0.successes)/\($0.requests)" } == ["cron>api 3/6", "web>api 5/6"])
    }

    @Test func fromAndToTogetherIsRefused() {
        #expect(throws: StatError.self) {
            _ = try StatQuery.rows(StatRequest(resource: ResourceRef(kind: .pod, name: nil, namespace: nil),
                                               from: ResourceRef(kind: .pod, name: "a", namespace: nil),
                                               to: ResourceRef(kind: .pod, name: "b", namespace: nil)),
                                   window: window, mesh: nil, proxies: [])
        }
    }

    @Test func quantilesInterpolateWithinTheirBucketLikePrometheus() {
        // 10 observations ≤ 10 ms, 10 more in (10, 20], none above.
        let buckets: [Double: Double] = [10: 10, 20: 20, .infinity: 20]
        #expect(StatQuery.quantile(0.5, buckets) == 10)
        #expect(StatQuery.quantile(0.75, buckets) == 15)
        #expect(StatQuery.quantile(0.25, buckets) == 5)
        #expect(StatQuery.quantile(0.5, [:]) == nil)
        // Everything in +Inf: the largest finite bound.
        #expect(StatQuery.quantile(0.99, [10: 0, .infinity: 5]) == 10)
    }

    @Test func increasesCountNewSeriesFromZeroAndResetCountersFromZero() {
        let labels = ["a": "1"]
        let window = MetricsWindow.from(
            start: [Sample(name: "response_total", labels: labels, value: 10)],
            end: [Sample(name: "response_total", labels: labels, value: 15),
                  Sample(name: "response_total", labels: ["a": "2"], value: 4),
                  Sample(name: "tcp_open_connections", labels: labels, value: 3)],
            seconds: 60)
        #expect(window.increases.map(\.value).sorted() == [4, 5])
        #expect(window.gauges.map(\.value) == [3])
        let reset = MetricsWindow.from(start: [Sample(name: "response_total", labels: labels, value: 10)],
                                       end: [Sample(name: "response_total", labels: labels, value: 3)], seconds: 60)
        #expect(reset.increases.map(\.value) == [3])
    }

    @Test func ratesDivideByTheTimeTheProxiesWereUpWithinTheWindow() {
        let now = Date(timeIntervalSince1970: 1_000)
        let started = { (at: Double) in Sample(name: "process_start_time_seconds", labels: [:], value: at) }
        #expect(MetricsWindow.covered(window: 60, now: now, samples: [started(980), started(990)]) == 20)
        #expect(MetricsWindow.covered(window: 60, now: now, samples: [started(100)]) == 60)
        #expect(MetricsWindow.covered(window: 60, now: now, samples: []) == 60)
    }

    @Test func theExpositionParserReadsLabelsWithEscapesAndSkipsOtherSeries() {
        let samples = Exposition.parse("""
            # HELP response_total Responses.
            # TYPE response_total counter
            response_total{direction="inbound",route="a\\"b",classification="success"} 7
            request_total{direction="inbound"} 9
            response_latency_ms_bucket{le="+Inf"} 3
            """)
        #expect(samples.count == 2)
        #expect(samples[0].labels["route"] == #"a"b"#)
        #expect(samples[0].value == 7)
        #expect(samples[1].labels["le"] == "+Inf")
    }

    @Test(arguments: [("deploy", ResourceKind.workload("deployment")), ("sts", .workload("statefulset")), ("po", .pod), ("svc", .service), ("ns", .namespace)])
    func resourceKindsAreWrittenTheKubectlWay(text: String, kind: ResourceKind) {
        #expect(ResourceKind(parsing: text) == kind)
    }
}
