import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
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
    func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        return channel.localAddress!.port!
    }

    func curl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "--max-time", "10"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func aSuspendedFilterAnswersOrLetsTheRequestContinue() async throws {
        let inbound = try freePort(), admin = try freePort(), outbound = try freePort()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("weft-suspend-\(UUID().uuidString).yaml")
        try """
            admin: { address: 127.0.0.1:\(admin) }
            tap: { enabled: false }
            inbound:
              address: 127.0.0.1:\(inbound)
              app: 127.0.0.1:9
              filters: [{ name: wait-then-decide }, { name: route }]
            outbound: { address: 127.0.0.1:\(outbound) }
            """.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }

        let telemetry = Telemetry()
        var registry = FilterRegistry.builtin(telemetry: telemetry)
        registry.register(WaitThenDecideFactory())
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = ProxyServer(configPath: file.path, registry: registry, telemetry: telemetry, logger: Logger(label: "test"), group: group, watchInterval: nil)
        let services = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: Logger(label: "test")))
        let running = Task { try await services.run() }
        for _ in 0..<100 where !server.isReady { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.isReady)

        // Resumed with .respond: the filter's answer, not the (unreachable) app.
        let answered = try curl(["-i", "http://127.0.0.1:\(inbound)/answer"])
        #expect(answered.hasPrefix("HTTP/1.1 202"), "\(answered)")
        #expect(answered.contains("x-decided-by: wait-then-decide"))

        // Resumed with .continue: the chain goes on and the request is sent to the app (refused here).
        let continued = try curl(["-i", "http://127.0.0.1:\(inbound)/other"])
        #expect(continued.hasPrefix("HTTP/1.1 502"), "\(continued)")
        #expect(continued.contains("weft-proxy-error: connect to 127.0.0.1:9 failed"))

        await services.triggerGracefulShutdown()
        try await running.value
        try await group.shutdownGracefully()
    }
}
