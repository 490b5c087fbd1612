import Foundation
import Testing

extension Integration {
    /// Load balancing (power of two choices over peak-EWMA) and failure accrual, with real Python
    /// upstreams that are slow or get killed.
    @Suite struct Balancing {
        static func config(endpoints: [PythonUpstream], accrual: String = "{}") -> String {
            ProxyUnderTest.config(app: endpoints[0].address, inboundFilters: """
                - name: protocol-detect
                - name: route
                  config: { routes: [{ name: pair, backend: pair }] }
                - name: metrics
                """, extra: """
                backends: [{ name: pair, endpoints: [\(endpoints.map(\.address).joined(separator: ", "))] }]
                upstream: { failureAccrual: \(accrual) }
                """)
        }

        static func requestsSeen(_ upstream: PythonUpstream) async throws -> Int {
            try await Retries.flakyStats(upstream).requests
        }

        @Test func theSlowerEndpointReceivesClearlyLessTraffic() async throws {
            let fast = try await PythonUpstream.start()
            let slow = try await PythonUpstream.start(delayMs: 50)
            let proxy = try await ProxyUnderTest.start(config: Self.config(endpoints: [fast, slow]))
            defer { proxy.stop() }
            let outcome = try await Retries.load("http://\(proxy.inbound)/flaky?p=0", requests: 1_000)
            #expect(outcome.ok == 1_000)
            let fastSaw = try await Self.requestsSeen(fast), slowSaw = try await Self.requestsSeen(slow)
            #expect(fastSaw + slowSaw == 1_000)
            // Report the split; round-robin would give each 500.
            print("split: fast \(fastSaw), slow (+50 ms) \(slowSaw)")
            #expect(slowSaw < 100, "the +50 ms endpoint got \(slowSaw) of 1 000")
        }

        @Test func aKilledEndpointIsTrippedWithinItsThresholdAndProbedBackWhenItReturns() async throws {
            let steady = try await PythonUpstream.start()
            var flaky = try await PythonUpstream.start()
            let flakyPort = flaky.port
            let proxy = try await ProxyUnderTest.start(config: Self.config(
                endpoints: [steady, flaky], accrual: "{ consecutiveFailures: 7, minPenalty: 500ms, maxPenalty: 1s }"))
            defer { proxy.stop() }
            let before = try await Retries.load("http://\(proxy.inbound)/flaky?p=0", requests: 200)
            #expect(before.ok == 200)
            #expect(try await Self.requestsSeen(flaky) > 0, "both endpoints serve at first")

            flaky.process.stop()
            let during = try await Retries.load("http://\(proxy.inbound)/flaky?p=0", requests: 400)
            // Failures until the dead endpoint is tripped: its threshold, plus what was in flight (8 clients).
            #expect(during.serverErrors <= 7 + 8, "\(during.serverErrors) failed before the endpoint was tripped")
            #expect(during.ok + during.serverErrors == 400)

            flaky = try await PythonUpstream.start(port: flakyPort)
            try await Task.sleep(for: .milliseconds(1_600))   // past the (jittered) penalty
            let after = try await Retries.load("http://\(proxy.inbound)/flaky?p=0", requests: 400)
            #expect(after.ok == 400)
            #expect(try await Self.requestsSeen(flaky) > 0, "a probe succeeded and traffic came back")
        }

        @Test func endpointsChangingUnderLoadDropNoRequest() async throws {
            let first = try await PythonUpstream.start()
            let second = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: Self.config(endpoints: [first]))
            defer { proxy.stop() }
            // While h2load runs, the backend gains an endpoint, then loses the first one.
            let (both, onlySecond, file) = (Self.config(endpoints: [first, second]), Self.config(endpoints: [second]), proxy.configFile)
            let edits = Task {
                try await Task.sleep(for: .milliseconds(300))
                try both.write(to: file, atomically: true, encoding: .utf8)
                try await Task.sleep(for: .milliseconds(1_500))
                try onlySecond.write(to: file, atomically: true, encoding: .utf8)
            }
            let outcome = try await Retries.load("http://\(proxy.inbound)/slow?ms=20", requests: 1_500)
            try await edits.value
            #expect(outcome.ok == 1_500, "\(outcome.output)")
            let report = try await proxy.configReport()
            #expect(report["reloads"] as? Int == 2)
            let backends = report["backends"] as? [String: [String]]
            #expect(backends?["pair"] == [second.address])
        }

        @Test func whenEveryEndpointIsTrippedRequestsFailFast() async throws {
            var only = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: Self.config(
                endpoints: [only], accrual: "{ consecutiveFailures: 3, minPenalty: 30s, maxPenalty: 30s }"))
            defer { proxy.stop() }
            only.process.stop()
            only = try await PythonUpstream.start()   // elsewhere: the backend's endpoint stays dead
            for _ in 0..<3 {
                _ = try await curl(["-s", "-o", "/dev/null", "http://\(proxy.inbound)/echo"])
            }
            let started = ContinuousClock.now
            let answer = try await curl(["-s", "-i", "http://\(proxy.inbound)/echo"])
            #expect(ContinuousClock.now - started < .seconds(1))
            #expect(answer.stdout.hasPrefix("HTTP/1.1 503"), "\(answer.stdout)")
            #expect(answer.stdout.contains("weft-proxy-error: every endpoint of backend 'pair' is failing"))
        }
    }
}
