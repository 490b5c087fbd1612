import Testing
import WeftFilter
@testable import WeftTelemetry

@Suite struct MeshMetricsTests {
    let identity = ProxyIdentity(namespace: "emojivoto", workload: WorkloadRef(parsing: "deploy/web"), instance: "web-1")
    let voting = ServiceIdentity(service: "voting", namespace: "emojivoto", workload: WorkloadRef(parsing: "deploy/voting"))

    /// The value of the one series whose line starts with `name{` and has all `labels`.
    func value(_ text: String, _ name: String, _ labels: [String], without absent: String? = nil) -> Double? {
        let lines = text.split(separator: "\n").filter { line in
            line.hasPrefix(name + "{") && labels.allSatisfy { line.contains($0) } && !(absent.map { line.contains($0) } ?? false)
        }
        guard lines.count == 1, let last = lines[0].split(separator: " ").last else { return nil }
        return Double(last)
    }

    @Test func responsesAreClassifiedByStatusGRPCStatusAndErrors() {
        let metrics = MeshMetrics()
        let series = metrics.http(direction: .outbound, identity: identity, service: voting, route: "vote")
        series.recordResponse(status: 200, grpcStatus: nil, isGRPC: false, failed: false, latencyMs: 3)
        series.recordResponse(status: 404, grpcStatus: nil, isGRPC: false, failed: false, latencyMs: 3)
        series.recordResponse(status: 503, grpcStatus: nil, isGRPC: false, failed: false, latencyMs: 3)
        series.recordResponse(status: 200, grpcStatus: 0, isGRPC: true, failed: false, latencyMs: 3)
        series.recordResponse(status: 200, grpcStatus: 14, isGRPC: true, failed: false, latencyMs: 3)
        series.recordResponse(status: 200, grpcStatus: nil, isGRPC: true, failed: false, latencyMs: 3)
        series.recordResponse(status: 200, grpcStatus: nil, isGRPC: false, failed: true, latencyMs: 3)
        series.recordResponse(status: nil, grpcStatus: nil, isGRPC: false, failed: true, latencyMs: nil)
        let text = metrics.exposition()
        #expect(value(text, "response_total", [#"status_code="404""#, #"classification="success""#]) == 1)
        #expect(value(text, "response_total", [#"status_code="503""#, #"classification="failure""#]) == 1)
        #expect(value(text, "response_total", [#"grpc_status_code="0""#, #"classification="success""#]) == 1)
        #expect(value(text, "response_total", [#"grpc_status_code="14""#, #"classification="failure""#]) == 1)
        // 200 without a gRPC status on a gRPC call, and 200 that broke off mid-body: both failures.
        #expect(value(text, "response_total", [#"status_code="200""#, #"classification="failure""#], without: "grpc_status_code") == 2)
        #expect(value(text, "route_response_total", [#"route="vote""#, #"classification="failure""#, #"status_code="503""#]) == 1)
        // Only responses that started have a latency.
        #expect(value(text, "response_latency_ms_count", []) == 7)
        #expect(value(text, "response_latency_ms_sum", []) == 21)
    }

    @Test func outboundSeriesCarryTheDestinationAndInboundOnesDoNot() {
        let metrics = MeshMetrics()
        metrics.http(direction: .outbound, identity: identity, service: voting, route: nil).recordRequest()
        metrics.http(direction: .inbound, identity: identity, service: nil, route: nil).recordRequest()
        let text = metrics.exposition()
        #expect(value(text, "request_total", [#"direction="outbound""#, #"namespace="emojivoto""#, #"deployment="web""#,
                                              #"pod="web-1""#, #"dst_service="voting""#, #"dst_namespace="emojivoto""#,
                                              #"dst_deployment="voting""#, #"tls="false""#]) == 1)
        let inbound = text.split(separator: "\n").filter { $0.hasPrefix("request_total{") && $0.contains(#"direction="inbound""#) }
        #expect(inbound.count == 1)
        #expect(!inbound[0].contains("dst_"))
    }

    @Test func seriesAreSharedAcrossLookupsSoCountsSurviveAReload() {
        let metrics = MeshMetrics()
        let first = metrics.http(direction: .inbound, identity: identity, service: nil, route: "r")
        let second = metrics.http(direction: .inbound, identity: identity, service: nil, route: "r")
        #expect(first === second)
        first.recordRequest()
        second.recordRequest()
        #expect(value(metrics.exposition(), "route_request_total", [#"route="r""#]) == 2)
    }

    @Test func processMetricsAreReadFromProc() {
        let text = MeshMetrics().exposition()
        let rss = text.split(separator: "\n").first { $0.hasPrefix("process_resident_memory_bytes ") }
        #expect((rss.flatMap { Double($0.split(separator: " ")[1]) } ?? 0) > 1_000_000)
        #expect(text.contains("process_open_fds "))
        #expect(text.contains("process_cpu_seconds_total "))
        #expect(text.contains("weft_regex_limit_hits_total "))
    }
}
