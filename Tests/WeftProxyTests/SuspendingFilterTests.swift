import Foundation
import HTTPTypes
import NIOCore
import NIOPosix
import Testing
import WeftFilter
import WeftFilters
@testable import WeftProxy
import WeftTelemetry

/// A filter that waits on I/O (here, a timer) before deciding: `answer` paths get a 202 from the
/// filter, every other request continues down the chain.
struct WaitThenDecideFilter: HTTPFilter {
    func onRequestHead(_ request: inout HTTPRequest, context: RequestContext) -> FilterAction {
        let answer = request.path?.hasPrefix("/answer") == true
        let decided = context.eventLoop.scheduleTask(in: .milliseconds(50)) { () -> FilterAction in
            if answer {
                var fields = HTTPFields()
                fields[HTTPField.Name("x-decided-by")!] = "wait-then-decide"
                return .respond(LocalResponse(status: .accepted, headerFields: fields, body: "decided later\n"))
            }
            return .continue
        }
        return .suspend(decided.futureResult)
    }
}

struct WaitThenDecideFactory: FilterFactory {
    struct Config: Decodable {}
    let name = "wait-then-decide"
    func makeFilter(config: Config, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter {
        WaitThenDecideFilter()
    }
}

/// The proxy engine honours `.suspend`: reads pause, the chain resumes with the future's action.
@Suite(.serialized) struct SuspendingFilterTests {
    func curl(_ arguments: [String]) throws -> String {
        try standardOutput(of: "/usr/bin/curl", ["-s", "--max-time", "10"] + arguments)
    }

    @Test func aSuspendedFilterAnswersOrLetsTheRequestContinue() async throws {
        let inbound = try freeLocalPort(), admin = try freeLocalPort(), outbound = try freeLocalPort()
        let telemetry = Telemetry()
        var registry = FilterRegistry.builtin(telemetry: telemetry)
        registry.register(WaitThenDecideFactory())
        let proxy = try await InProcessProxy.start(config: """
            admin: { address: 127.0.0.1:\(admin) }
            tap: { enabled: false }
            inbound:
              address: 127.0.0.1:\(inbound)
              app: 127.0.0.1:9
              filters: [{ name: wait-then-decide }, { name: route }]
            outbound: { address: 127.0.0.1:\(outbound) }
            """, registry: registry, telemetry: telemetry)

        // Resumed with .respond: the filter's answer, not the (unreachable) app.
        let answered = try curl(["-i", "http://127.0.0.1:\(inbound)/answer"])
        #expect(answered.hasPrefix("HTTP/1.1 202"), "\(answered)")
        #expect(answered.contains("x-decided-by: wait-then-decide"))

        // Resumed with .continue: the chain goes on and the request is sent to the app (refused here).
        let continued = try curl(["-i", "http://127.0.0.1:\(inbound)/other"])
        #expect(continued.hasPrefix("HTTP/1.1 502"), "\(continued)")
        #expect(continued.contains("weft-proxy-error: connect to 127.0.0.1:9 failed"))

        try await proxy.stop()
    }
}
