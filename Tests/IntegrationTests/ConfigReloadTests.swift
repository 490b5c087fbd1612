import Foundation
import Testing

extension Integration {
    /// SIGHUP (and saving the file) swaps config atomically; a bad file is rejected and the
    /// config in force stays.
    @Suite struct ConfigReload {
        func chain(_ value: String) -> String {
            """
            - name: header-rewrite
              config: { request: { set: { x-config: \(value) } } }
            """
        }

        func seenHeader(_ proxy: ProxyUnderTest) async throws -> String? {
            let result = try await curl(["http://\(proxy.inbound)/echo"])
            let echo = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            return (echo?["headers"] as? [String: String])?["x-config"]
        }

        func waitForReport(_ proxy: ProxyUnderTest, _ condition: ([String: Any]) -> Bool) async throws -> [String: Any] {
            for _ in 0..<100 {
                let report = try await proxy.configReport()
                if condition(report) { return report }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw TestFailure("the /config report never reached the expected state: \(try await proxy.configReport())")
        }

        @Test func sighupAppliesAGoodConfigAndRejectsABadOneKeepingTheOld() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(
                config: ProxyUnderTest.config(app: upstream.address, inboundFilters: chain("one")), arguments: ["--no-watch"])
            #expect(try await seenHeader(proxy) == "one")
            let firstVersion = try await proxy.configReport()["version"] as? String

            // A good config, applied on SIGHUP.
            try ProxyUnderTest.config(app: upstream.address, inboundFilters: chain("two")).write(to: proxy.configFile, atomically: true, encoding: .utf8)
            proxy.process.signal(SIGHUP)
            let reloaded = try await waitForReport(proxy) { ($0["reloads"] as? Int) == 1 }
            #expect(reloaded["version"] as? String != firstVersion)
            #expect(try await seenHeader(proxy) == "two")

            // A bad config: rejected with file, line and field; version two stays in force.
            let bad = ProxyUnderTest.config(app: upstream.address, inboundFilters: """
                - name: route
                  config:
                    routes: [{ name: r, backend: missing }]
                """)
            try bad.write(to: proxy.configFile, atomically: true, encoding: .utf8)
            proxy.process.signal(SIGHUP)
            let rejected = try await waitForReport(proxy) { ($0["rejectedReloads"] as? Int) == 1 }
            let error = try #require(rejected["lastReloadError"] as? String)
            #expect(error.contains("proxy.yaml:"))
            #expect(error.contains("inbound.filters[0].config.routes[0].backend"))
            #expect(error.contains("unknown backend 'missing'"))
            #expect(rejected["version"] as? String == reloaded["version"] as? String)
            #expect(try await seenHeader(proxy) == "two")
            _ = try await proxy.process.waitForOutput("config rejected, keeping version")
        }

        @Test func savingTheFileReloadsWithoutASignal() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address, inboundFilters: chain("before")))
            #expect(try await seenHeader(proxy) == "before")
            try ProxyUnderTest.config(app: upstream.address, inboundFilters: chain("after")).write(to: proxy.configFile, atomically: true, encoding: .utf8)
            _ = try await waitForReport(proxy) { ($0["reloads"] as? Int) == 1 }
            #expect(try await seenHeader(proxy) == "after")
        }

        @Test func anInvalidConfigAtStartupExitsWithTheErrorInOneLine() async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-bad-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let file = directory.appendingPathComponent("proxy.yaml")
            try "inbound:\n  address: 127.0.0.1:0\n  ap: 127.0.0.1:8080\n".write(to: file, atomically: true, encoding: .utf8)
            let result = try await run(Paths.proxyBinary, ["--config", file.path, "--check"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("proxy.yaml:3: inbound.ap: unknown field 'ap'"), "\(result.stderr)")
        }
    }
}
