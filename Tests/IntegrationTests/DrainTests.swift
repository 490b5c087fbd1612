import Foundation
import Testing

extension Integration {
    @Suite struct Drain {
        @Test func sigtermFinishesRequestsInFlightRefusesNewOnesAndExitsZero() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            async let slow = curl(["-o", "/dev/null", "-w", "%{http_code}", "http://\(proxy.inbound)/slow?ms=1500"])
            // Let the slow request reach the upstream, then ask the proxy to stop.
            try await Task.sleep(for: .milliseconds(500))
            proxy.process.signal(SIGTERM)
            try await Task.sleep(for: .milliseconds(200))
            let refused = try await curl(["-o", "/dev/null", "-w", "%{http_code}", "http://\(proxy.inbound)/status/200"])
            #expect(refused.status != 0, "a new connection after SIGTERM must not be served")
            #expect(try await slow.stdout == "200")
            #expect(await proxy.process.waitForExit() == 0)
            #expect(proxy.process.output.contains("drained; exiting"))
        }
    }
}
