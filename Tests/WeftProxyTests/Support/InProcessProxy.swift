import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing
import WeftFilter
@testable import WeftProxy
import WeftTelemetry

/// A proxy run inside the test process, with its config in a temporary file: tests can register
/// their own filters and hold the proxy's objects (weakly) while real clients talk to it.
struct InProcessProxy {
    let server: ProxyServer
    private let services: ServiceGroup
    private let running: Task<Void, any Error>
    private let group: MultiThreadedEventLoopGroup
    private let file: URL

    /// Starts a proxy on one event loop with `config` (YAML) and `registry`, and waits until it is ready.
    static func start(config: String, registry: FilterRegistry, telemetry: Telemetry) async throws -> InProcessProxy {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("weft-test-\(UUID().uuidString).yaml")
        try config.write(to: file, atomically: true, encoding: .utf8)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = ProxyServer(configPath: file.path, registry: registry, telemetry: telemetry, logger: Logger(label: "test"),
                                 group: group, watchInterval: nil)
        let services = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: Logger(label: "test")))
        let running = Task { try await services.run() }
        for _ in 0..<100 where !server.isReady { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.isReady)
        return InProcessProxy(server: server, services: services, running: running, group: group, file: file)
    }

    func stop() async throws {
        await services.triggerGracefulShutdown()
        try await running.value
        try await group.shutdownGracefully()
        try? FileManager.default.removeItem(at: file)
    }
}

/// A free TCP port on the loopback interface.
func freeLocalPort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
    defer { try? channel.close().wait() }
    return channel.localAddress!.port!
}

/// What `executable` printed on its standard output.
func standardOutput(of executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
