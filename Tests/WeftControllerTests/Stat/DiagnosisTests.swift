import Testing
@testable import WeftController

@Suite struct DiagnosisTests {
    func edge(_ source: String, _ destination: String, _ successes: Int, _ requests: Int) -> EdgeRow {
        EdgeRow(source: source, sourceNamespace: "ns", destination: destination, destinationNamespace: "ns", requests: requests,
                successes: successes, successRate: requests > 0 ? Double(successes) / Double(requests) : nil, rps: 1)
    }

    func row(_ name: String, _ successes: Int, _ requests: Int) -> StatRow {
        StatRow(namespace: "ns", name: name, meshed: nil, requests: requests, successes: successes,
                successRate: Double(successes) / Double(requests), rps: 1, latencyP50Ms: nil, latencyP95Ms: nil, latencyP99Ms: nil, tcpConnections: nil)
    }

    /// emojivoto's story: web → voting fails because voting → emoji fails; web → emoji is fine.
    var story: (edges: [EdgeRow], rows: [StatRow]) {
        ([edge("web", "voting", 80, 100), edge("voting", "emoji", 80, 100), edge("web", "emoji", 200, 200), edge("bot", "web", 80, 100)],
         [row("web", 80, 100), row("voting", 80, 100), row("emoji", 280, 300), row("bot", 0, 0)])
    }

    @Test func theOriginIsTheFailingEdgeWhoseCalleeMakesNoFailingCall() {
        let diagnosis = Diagnosis.analyze(edges: story.edges, workloads: story.rows, scope: ("ns", nil), window: 60)
        #expect(diagnosis.origins.count == 1)
        let origin = diagnosis.origins[0]
        #expect(origin.edge?.source == "voting")
        #expect(origin.edge?.destination == "emoji")
        #expect(origin.otherCallers.map(\.source) == ["web"])
        #expect(origin.surfacesAt.map(\.source) == ["web"])
        #expect(Set(diagnosis.propagated.map { "\($0.source)>\($0.destination)" }) == ["web>voting", "bot>web"])
    }

    @Test func startingFromAWorkloadWalksWhatItCallsAndWhatCallsIt() {
        let fromWeb = Diagnosis.analyze(edges: story.edges, workloads: story.rows, scope: ("ns", "web"), window: 60)
        #expect(fromWeb.origins.map { $0.edge?.source } == ["voting"])
        let fromEmoji = Diagnosis.analyze(edges: story.edges, workloads: story.rows, scope: ("ns", "emoji"), window: 60)
        #expect(fromEmoji.origins.map { $0.edge?.source } == ["voting"], "asked about the callee, the failing caller's edge is the answer")
    }

    @Test func aWorkloadFailingWithNoFailingCallIsItsOwnOrigin() {
        let diagnosis = Diagnosis.analyze(edges: [edge("web", "db", 100, 100)], workloads: [row("web", 50, 100), row("db", 100, 100)],
                                          scope: (nil, nil), window: 60)
        #expect(diagnosis.origins.count == 1)
        #expect(diagnosis.origins[0].edge == nil)
        #expect(diagnosis.origins[0].workload == "web")
    }

    @Test func aHealthyMeshHasNoOrigin() {
        let diagnosis = Diagnosis.analyze(edges: [edge("a", "b", 1000, 1000), edge("b", "c", 995, 1000)],
                                          workloads: [row("a", 1000, 1000)], scope: (nil, nil), window: 60)
        #expect(diagnosis.origins.isEmpty, "under 1% lost is not failing")
        #expect(diagnosis.propagated.isEmpty)
    }
}
