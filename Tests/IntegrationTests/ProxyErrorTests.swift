import Foundation
import Testing

extension Integration {
    /// Bad input and failing upstreams get the right status, a `weft-proxy-error` header, and
    /// the proxy keeps serving.
    @Suite struct ProxyErrors {
        @Test func aMalformedRequestLineGets400AndTheNextClientIsServed() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            let answer = try rawExchange(proxy.inbound, Array("GET /a b c HTTP/1.1 garbage\r\nHost: x\r\n\r\n".utf8))
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
            #expect(answer.lowercased().contains("weft-proxy-error: malformed request"))
            let next = try await curl(["-o", "/dev/null", "-w", "%{http_code}", "http://\(proxy.inbound)/status/200"])
            #expect(next.stdout == "200")
        }

        @Test func aHundredKibibyteHeaderGets431() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            let request = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 100 * 1024))\r\n\r\n"
            let answer = try rawExchange(proxy.inbound, Array(request.utf8))
            #expect(answer.hasPrefix("HTTP/1.1 431"), "\(answer.prefix(200))")
            #expect(answer.contains("weft-proxy-error: request head is larger than 80 KiB"))
            let next = try await curl(["-o", "/dev/null", "-w", "%{http_code}", "http://\(proxy.inbound)/status/200"])
            #expect(next.stdout == "200")
        }

        @Test func anUpstreamRefusingConnectionsGets502WithTheReason() async throws {
            // A port that was just free: nothing listens there.
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:9"))
            let result = try await curl(["-i", "http://\(proxy.inbound)/"])
            #expect(result.stdout.hasPrefix("HTTP/1.1 502"), "\(result.stdout)")
            #expect(result.stdout.contains("weft-proxy-error: connect to 127.0.0.1:9 failed: connection refused"))
        }

        @Test func aHangingUpstreamGets504AfterTheRouteTimeout() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address, inboundFilters: """
                - name: route
                  config:
                    routes:
                      - { name: hang, match: { path: /hang }, backend: app, timeout: 500ms }
                """))
            let started = ContinuousClock.now
            let result = try await curl(["-i", "http://\(proxy.inbound)/hang"], timeout: .seconds(20))
            let elapsed = ContinuousClock.now - started
            #expect(result.stdout.hasPrefix("HTTP/1.1 504"), "\(result.stdout)")
            #expect(result.stdout.contains("weft-proxy-error: upstream \(upstream.address) did not respond within 500ms (route 'hang')"))
            #expect(elapsed >= .milliseconds(500))
            // The proxy still serves, on the same listener.
            let next = try await curl(["-o", "/dev/null", "-w", "%{http_code}", "http://\(proxy.inbound)/status/200"])
            #expect(next.stdout == "200")
        }

        @Test func aBackendWithoutEndpointsGets503AndAnUnmatchedRequestGets404WhenRoutesReject() async throws {
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:9", outboundFilters: """
                - name: route
                  config:
                    onNoMatch: reject
                    routes:
                      - { name: empty, match: { path: { prefix: /empty } }, backend: nobody-home }
                """, extra: """
                backends:
                  - { name: nobody-home, endpoints: [] }
                """))
            let empty = try await curl(["-i", "-H", "Host: anything", "http://\(proxy.outbound)/empty"])
            #expect(empty.stdout.hasPrefix("HTTP/1.1 503"), "\(empty.stdout)")
            #expect(empty.stdout.contains("weft-proxy-error: backend 'nobody-home' has no endpoints"))
            let unmatched = try await curl(["-i", "-H", "Host: anything", "http://\(proxy.outbound)/other"])
            #expect(unmatched.stdout.hasPrefix("HTTP/1.1 404"))
            #expect(unmatched.stdout.contains("weft-proxy-error: no route matches GET anything/other"))
        }

        @Test func anUpstreamThatClosesWithoutAnsweringGets502() async throws {
            let (listener, port) = try await startPythonFixture("rude_upstream.py")
            _ = listener
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            let result = try await curl(["-i", "http://\(proxy.inbound)/"])
            #expect(result.stdout.hasPrefix("HTTP/1.1 502"), "\(result.stdout)")
            #expect(result.stdout.contains("closed the connection before responding"))
        }
    }
}
