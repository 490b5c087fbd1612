import Foundation
import Testing

extension Integration {
    /// The example plugin (`Plugins/HeaderRewrite`), enabled purely by config, changes real traffic.
    @Suite struct PluginTraffic {
        @Test func headerRewriteFillsHeadersFromRouteCapturesOnRealRequests() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:9", outboundFilters: """
                - name: route
                  config:
                    routes:
                      - name: user-by-id
                        match: { path: { regex: '/echo/users/(?<id>[0-9]+)' } }
                        backend: users
                - name: header-rewrite
                  config:
                    routes: [user-by-id]
                    request: { set: { x-user-id: "${id}" }, remove: [x-debug] }
                    response: { set: { x-weft-route: "${route}" } }
                """, extra: """
                backends:
                  - { name: users, endpoints: [\(upstream.address)] }
                """))
            // The upstream's /echo ignores the suffix only if we keep /echo as the path: use a query-free path it knows.
            let result = try await curl(["-i", "-H", "Host: users", "-H", "x-debug: secret", "http://\(proxy.outbound)/echo/users/42"])
            #expect(result.stdout.lowercased().contains("x-weft-route: user-by-id"), "\(result.stdout)")
            let body = String(result.stdout[result.stdout.range(of: "\r\n\r\n")!.upperBound...])
            let echo = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            let headers = try #require(echo?["headers"] as? [String: String])
            #expect(headers["x-user-id"] == "42")
            #expect(headers["x-debug"] == nil)
        }
    }
}
