import Foundation
import Synchronization
import Testing

extension Integration {
    /// Config push between a real `weft controller` and a real proxy: endpoints follow the mesh
    /// file, the controller can die and come back under load without a failed request, and bad
    /// config (rejected by the controller, or NACKed by the proxy) never reaches traffic.
    @Suite struct ConfigPush {
        /// A controller process on fixed ports (so it can be restarted where proxies expect it).
        final class Controller {
            let push: Int
            let api: String
            let meshFile: URL
            private(set) var process: ChildProcess

            init(meshFile: URL) throws {
                let ports = distinctFreePorts(2)
                push = ports[0]
                api = "http://127.0.0.1:\(ports[1])"
                self.meshFile = meshFile
                process = Self.makeProcess(meshFile: meshFile, push: push, api: api)
                try process.start()
            }

            static func makeProcess(meshFile: URL, push: Int, api: String) -> ChildProcess {
                ChildProcess(Paths.weftBinary, ["controller", "--mesh", meshFile.path, "--push-address", "127.0.0.1:\(push)",
                                                "--api-address", String(api.dropFirst("http://".count)), "--scrape-interval", "1"],
                             stopsGracefully: true)
            }

            func restart() async throws {
                process = Self.makeProcess(meshFile: meshFile, push: push, api: api)
                try process.start()
                _ = try await process.waitForOutput("weft-controller ready")
            }

            func check() async throws -> CommandResult {
                try await run(Paths.weftBinary, ["check", "--controller", api])
            }

            /// Polls `weft check` until `done` holds.
            func check(until done: (CommandResult) -> Bool, timeout: Duration = .seconds(20)) async throws -> CommandResult {
                let deadline = ContinuousClock.now + timeout
                var last = try await check()
                while !done(last) && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    last = try await check()
                }
                guard done(last) else { throw TestFailure("weft check never got there:\n\(last.stdout)\n\(last.stderr)\ncontroller:\n\(process.output.suffix(2_000))") }
                return last
            }
        }

        static func mesh(api: String, clientFilters: String = "") -> String {
            """
            workloads:
              - name: client
                namespace: t
            \(clientFilters)
              - name: api
                namespace: t
                endpoints: [\(api)]
            """
        }

        /// Requests through the proxy's outbound listener to `http://api/` until stopped; every status seen.
        final class Load: Sendable {
            private final class Shared: Sendable {
                let codes = Mutex<[String]>([])
                let stopped = Atomic<Bool>(false)
            }
            private let shared = Shared()
            private let task: Task<Void, any Error>

            init(outbound: String) {
                let shared = self.shared
                task = Task {
                    var batch = 0
                    while !shared.stopped.load(ordering: .relaxed) {
                        batch += 1
                        let urls = (1...25).flatMap { ["-o", "/dev/null", "http://api/echo?b=\(batch)&i=\($0)"] }
                        let result = try await curl(["--proxy", "http://\(outbound)", "-w", "%{http_code}\\n"] + urls)
                        shared.codes.withLock { $0 += result.stdout.split(separator: "\n").map(String.init) }
                    }
                }
            }

            func stop() async throws -> [String] {
                shared.stopped.store(true, ordering: .relaxed)
                try await task.value
                return shared.codes.withLock { $0 }
            }

            var count: Int { shared.codes.withLock { $0.count } }
        }

        static func write(_ text: String, to file: URL) throws {
            try text.write(to: file, atomically: true, encoding: .utf8)
        }

        @Test func theControllerDyingUnderLoadFailsNoRequestAndProxiesReconnectAndAck() async throws {
            let first = try await PythonUpstream.start()
            let second = try await PythonUpstream.start()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-push-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let meshFile = directory.appendingPathComponent("mesh.yaml")
            try Self.write(Self.mesh(api: first.address), to: meshFile)
            let controller = try Controller(meshFile: meshFile)
            defer { controller.process.stop() }
            _ = try await controller.process.waitForOutput("weft-controller ready")
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: first.address, extra: """
                identity: { namespace: t, workload: deploy/client, instance: client-0 }
                controller: { address: 127.0.0.1:\(controller.push) }
                """))
            defer { proxy.stop() }
            let acked = try await controller.check { $0.status == 0 }
            #expect(acked.stdout.contains("√ proxy t/deployment/client/client-0 connected, on config"), "\(acked.stdout)")
            let backends = try await proxy.configReport()["backends"] as? [String: [String]]
            #expect(backends == ["api": [first.address], "api.t": [first.address], "client.t": [], "client": [], "app": [first.address]], "\(backends ?? [:])")

            // Killed (no goodbye) and restarted while requests flow: none fails.
            let load = Load(outbound: proxy.outbound)
            while load.count < 50 { try await Task.sleep(for: .milliseconds(20)) }
            controller.process.signal(SIGKILL)
            _ = await controller.process.waitForExit()
            let duringOutage = load.count
            while load.count < duringOutage + 100 { try await Task.sleep(for: .milliseconds(20)) }
            let report = try await proxy.configReport()
            #expect((report["controller"] as? [String: Any])?["connected"] as? Bool == false, "\(report)")
            try await controller.restart()
            _ = try await controller.check { $0.status == 0 }
            let afterRestart = load.count
            while load.count < afterRestart + 50 { try await Task.sleep(for: .milliseconds(20)) }
            let codes = try await load.stop()
            #expect(codes.count >= 200)
            #expect(codes.allSatisfy { $0 == "200" }, "\(Dictionary(grouping: codes, by: { $0 }).mapValues(\.count))")
            #expect(proxy.process.output.contains("unreachable"), "the proxy says, once, that it lost the controller")

            // An endpoint change reaches the proxy quickly (the file is checked every 250 ms).
            let edited = ContinuousClock.now
            try Self.write(Self.mesh(api: second.address), to: meshFile)
            while (try await proxy.configReport()["backends"] as? [String: [String]])?["api"] != [second.address] {
                if ContinuousClock.now - edited > .seconds(10) { throw TestFailure("the new endpoint never reached the proxy") }
                try await Task.sleep(for: .milliseconds(20))
            }
            print("endpoint change reached the proxy in \(ContinuousClock.now - edited)")
            let served = try await curl(["--proxy", "http://\(proxy.outbound)", "http://api/echo"])
            #expect(served.status == 0)
            #expect(try await second.connectionCount() >= 1)
            _ = try await controller.check { $0.status == 0 }
            let version = try await proxy.configReport()["version"] as? String

            // A filter the proxy lacks: the controller cannot check it and says so; the proxy NACKs
            // and stays on its version; `weft check` shows it.
            try Self.write(Self.mesh(api: second.address, clientFilters: """
                    outbound:
                      filters:
                        - name: rate-limit-nobody-has
                """), to: meshFile)
            // Wait for the proxy's answer: the controller's own warning says "(NACK)" too, before
            // the proxy has answered ("not acknowledged yet").
            let nacked = try await controller.check { $0.status != 0 && $0.stdout.contains("(NACK) and stays on") }
            #expect(nacked.stdout.contains("× proxy t/deployment/client/client-0 on the latest config"), "\(nacked.stdout)")
            #expect(nacked.stdout.contains("rate-limit-nobody-has"), "\(nacked.stdout)")
            #expect(nacked.stdout.contains("stays on \(version ?? "?")"), "\(nacked.stdout)")
            #expect(nacked.stdout.contains("‼ "), "the controller's warning about a filter it cannot check: \(nacked.stdout)")
            #expect(try await proxy.configReport()["version"] as? String == version)
            #expect(try await curl(["--proxy", "http://\(proxy.outbound)", "-o", "/dev/null", "-w", "%{http_code}", "http://api/echo"]).stdout == "200")

            // An edit the controller rejects: file, line and field; the last good state stays.
            try Self.write(Self.mesh(api: "not-an-address"), to: meshFile)
            let rejected = try await controller.check { $0.stdout.contains("the last edit was rejected") }
            #expect(rejected.status != 0)
            #expect(rejected.stdout.contains("mesh.yaml:7: workloads[1].endpoints[0]: 'not-an-address' is not host:port"), "\(rejected.stdout)")
            #expect(controller.process.output.contains("mesh state rejected, keeping the last good one"))
            #expect(try await curl(["--proxy", "http://\(proxy.outbound)", "-o", "/dev/null", "-w", "%{http_code}", "http://api/echo"]).stdout == "200")
        }
    }
}
