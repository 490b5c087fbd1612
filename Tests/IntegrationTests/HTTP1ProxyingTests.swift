import Foundation
import Testing

extension Integration {
    @Suite struct HTTP1Proxying {
        @Test func curlReachesTheAppThroughTheInboundListenerWithHostPreserved() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            let result = try await curl(["-H", "Host: emoji.emojivoto:8080", "http://\(proxy.inbound)/echo?x=1"])
            #expect(result.status == 0, "\(result.stderr)")
            let echo = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            #expect(echo?["path"] as? String == "/echo?x=1")
            let headers = echo?["headers"] as? [String: String]
            #expect(headers?["host"] == "emoji.emojivoto:8080")
        }

        @Test func outboundTrafficGoesToTheAuthorityOrTheNamedBackend() async throws {
            let direct = try await PythonUpstream.start()
            let named = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:1", extra: """
                backends:
                  - name: users.default
                    endpoints: [\(named.address)]
                """))
            // No backend is named like this authority: the request goes where it was headed.
            let first = try await curl(["-H", "Host: \(direct.address)", "http://\(proxy.outbound)/status/201", "-o", "/dev/null", "-w", "%{http_code}"])
            #expect(first.stdout == "201")
            #expect(try await direct.connectionCount() == 2)  // the proxied request and this count query
            // The authority names a backend: its endpoints serve it.
            let second = try await curl(["-H", "Host: users.default:8080", "http://\(proxy.outbound)/status/202", "-o", "/dev/null", "-w", "%{http_code}"])
            #expect(second.stdout == "202")
            #expect(try await named.connectionCount() == 2)
        }

        @Test func oneHundredSequentialRequestsReuseOneUpstreamConnection() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            let urls = (0..<100).map { "http://\(proxy.inbound)/status/200?n=\($0)" }
            let result = try await curl(["-w", "%{http_code} %{num_connects}\\n"] + urls.flatMap { [$0, "-o", "/dev/null"] })
            let lines = result.stdout.split(separator: "\n")
            #expect(lines.count == 100)
            #expect(lines.allSatisfy { $0.hasPrefix("200") })
            // curl kept one client connection; the proxy kept one upstream connection.
            #expect(lines.dropFirst().allSatisfy { $0.hasSuffix(" 0") })
            #expect(try await upstream.connectionCount() == 2)  // one for the 100 requests, one for this query
        }

        @Test func pooledConnectionsThatIdleOutAreClosedAndReplaced() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address, extra: """
                upstream: { idleTimeout: 200ms }
                """))
            let first = try await curl(["-o", "/dev/null", "-w", "%{http_code}", "http://\(proxy.inbound)/status/200"])
            #expect(first.stdout == "200")
            // Past the idle timeout the pooled connection is closed; the next request gets a new one.
            try await Task.sleep(for: .milliseconds(600))
            #expect(proxy.process.isRunning)
            let second = try await curl(["-o", "/dev/null", "-w", "%{http_code}", "http://\(proxy.inbound)/status/200"])
            #expect(second.stdout == "200")
            #expect(try await upstream.connectionCount() == 3)  // two proxied connections and this query
        }

        @Test func chunkedBodiesStreamBothWaysWithTrailers() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            // Chunked upload: curl frames the file with Transfer-Encoding: chunked.
            let payload = Data((0..<300_000).map { UInt8($0 % 251) })
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("weft-chunked-up-\(UUID().uuidString)")
            try payload.write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let upload = try await curl(["-H", "Transfer-Encoding: chunked", "--data-binary", "@\(file.path)", "http://\(proxy.inbound)/upload"])
            let uploaded = try JSONSerialization.jsonObject(with: Data(upload.stdout.utf8)) as? [String: Any]
            #expect(uploaded?["bytes"] as? Int == payload.count, "\(upload.stdout) \(upload.stderr)")
            // Chunked download with a trailer.
            let download = try await curl(["-v", "--raw", "http://\(proxy.inbound)/download?bytes=200000&chunked=1", "-o", "/tmp/weft-chunked-\(getpid())"])
            let raw = try Data(contentsOf: URL(fileURLWithPath: "/tmp/weft-chunked-\(getpid())"))
            try? FileManager.default.removeItem(atPath: "/tmp/weft-chunked-\(getpid())")
            #expect(download.stderr.lowercased().contains("transfer-encoding: chunked"))
            #expect(String(decoding: raw.suffix(40), as: UTF8.self).contains("x-checksum: done"))
        }

        @Test func pipelinedRequestsAreAnsweredInOrderOnOneConnection() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            defer { proxy.stop() }
            // Four requests in one write, the last one with a body and `Connection: close`.
            let requests = "GET /echo/1 HTTP/1.1\r\nHost: a\r\n\r\n" + "GET /status/503 HTTP/1.1\r\nHost: a\r\n\r\n"
                + "GET /echo/3 HTTP/1.1\r\nHost: a\r\n\r\n"
                + "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
            let answer = try rawExchange(proxy.inbound, Array(requests.utf8))
            let statuses = answer.matches(of: /HTTP\/1\.1 \d{3}/).map { String(answer[$0.range]) }
            #expect(statuses == ["HTTP/1.1 200", "HTTP/1.1 503", "HTTP/1.1 200", "HTTP/1.1 200"], "\(answer)")
            let first = try #require(answer.range(of: #""path": "/echo/1""#)), third = try #require(answer.range(of: #""path": "/echo/3""#))
            #expect(first.lowerBound < third.lowerBound)
            #expect(answer.contains(#""bytes": 5"#))
            // A client that half-closes right after pipelining still gets every answer.
            let halfClosed = try await run("/bin/sh", ["-c", "printf 'GET /echo/a HTTP/1.1\\r\\nHost: a\\r\\n\\r\\nGET /echo/b HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n' | nc -N 127.0.0.1 \(proxy.inbound.split(separator: ":")[1])"])
            #expect(halfClosed.stdout.matches(of: /HTTP\/1\.1 200/).count == 2, "\(halfClosed.stdout)")
        }

        /// The upstream fixture and a proxy in front of it whose client connections idle out after 1 s.
        static func proxyWithOneSecondIdleTimeout() async throws -> (PythonUpstream, ProxyUnderTest) {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(
                app: upstream.address, extra: "downstream: { idleTimeout: 1s }"))
            return (upstream, proxy)
        }

        @Test func anIdleClientConnectionIsClosedAfterTheIdleTimeout() async throws {
            let (upstream, proxy) = try await Self.proxyWithOneSecondIdleTimeout()
            defer { proxy.stop(); _ = upstream }
            let started = ContinuousClock.now
            // One request, then silence: rawExchange reads until the proxy closes (or 10 s pass).
            let answer = try rawExchange(proxy.inbound, Array("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
            let waited = ContinuousClock.now - started
            #expect(answer.hasPrefix("HTTP/1.1 200"))
            #expect(waited >= .milliseconds(900) && waited < .seconds(5), "closed after \(waited)")
        }

        @Test func aRequestWaitingOnASlowUpstreamOutlastsTheIdleTimeout() async throws {
            // The connection is not idle while its request is in flight: a slow upstream is the
            // route timeout's business. The answer comes after 2 s, past the 1 s idle timeout.
            let (upstream, proxy) = try await Self.proxyWithOneSecondIdleTimeout()
            defer { proxy.stop(); _ = upstream }
            let answer = try rawExchange(proxy.inbound, Array("GET /slow?ms=2000 HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        }

        @Test func aHalfClosedClientsRequestIsDroppedWithItsUpstreamRequestAfterTheIdleTimeout() async throws {
            // A FIN cannot be told from a client that left (curl giving up): such a request still
            // waits for its answer, but no longer than the idle timeout without activity; then
            // the proxy closes the client connection and drops the upstream request with it.
            let (upstream, proxy) = try await Self.proxyWithOneSecondIdleTimeout()
            defer { proxy.stop(); _ = upstream }
            let started = ContinuousClock.now
            let answer = try rawExchange(proxy.inbound, Array("GET /hang HTTP/1.1\r\nHost: a\r\n\r\n".utf8), halfClose: true)
            let waited = ContinuousClock.now - started
            #expect(answer.isEmpty, "\(answer)")
            #expect(waited >= .milliseconds(900) && waited < .seconds(5), "closed after \(waited)")
            // Only the query's own connection stays open at the upstream.
            var open = -1
            for _ in 0..<40 {
                open = try await upstream.openConnectionCount()
                if open == 1 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(open == 1, "connections open at the upstream: \(open)")
            _ = try await proxy.process.waitForOutput("gave up on a request whose client half-closed", timeout: .seconds(5))
            // A half-closed client whose answer comes in time still gets it (nc -N, the pipelining test).
            let slow = try rawExchange(proxy.inbound, Array("GET /slow?ms=300 HTTP/1.1\r\nHost: a\r\n\r\n".utf8), halfClose: true)
            #expect(slow.hasPrefix("HTTP/1.1 200"), "\(slow)")
        }

        @Test func expectContinueGetsTheUpstreams100BeforeTheBodyIsSent() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            let body = String(repeating: "b", count: 20_000)
            let started = ContinuousClock.now
            let result = try await curl(["-v", "-H", "Expect: 100-continue", "--expect100-timeout", "10", "--data-binary", body, "http://\(proxy.inbound)/upload"])
            #expect(result.stderr.contains("HTTP/1.1 100 Continue"), "\(result.stderr)")
            #expect(result.stdout.contains("\"bytes\": 20000"))
            // Without the 100, curl would have waited its 10 s expect timeout.
            #expect(ContinuousClock.now - started < .seconds(8))
        }

        @Test func webSocketEchoWorksThroughTheProxyAfter101() async throws {
            let (server, port) = try await startPythonFixture("ws_echo.py", ["server"])
            _ = server
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            let client = try await run(Paths.pythonExecutable(), [Paths.fixtures.appendingPathComponent("ws_echo.py").path, "client", "ws://\(proxy.inbound)/chat", "50"])
            #expect(client.stdout.contains("OK 50"), "\(client.stdout) \(client.stderr)")
        }

        @Test func headRequestsAndNoContentResponsesCarryNoBody() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            let head = try await curl(["-I", "http://\(proxy.inbound)/download?bytes=5000"])
            #expect(head.stdout.contains("200 OK"))
            #expect(head.stdout.lowercased().contains("content-length: 5000"))
            // Two requests on one connection: a body on the 204 would corrupt the second.
            let twice = try await curl(["-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code}\\n", "http://\(proxy.inbound)/status/204", "http://\(proxy.inbound)/status/200"])
            #expect(twice.stdout == "204\n200\n")
        }

        @Test func headResponsesKeepTheirFramingHeadersButCarryNoBody() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            defer { proxy.stop() }
            // Three pipelined requests on one connection: a body after either HEAD answer would be
            // read as the start of the next response.
            let requests = "HEAD /download?bytes=100 HTTP/1.1\r\nHost: a\r\n\r\n"
                + "HEAD /download?bytes=100&chunked=1 HTTP/1.1\r\nHost: a\r\n\r\n"
                + "GET /status/200 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            let answer = try rawExchange(proxy.inbound, Array(requests.utf8))
            let heads = answer.components(separatedBy: "\r\n\r\n")
            try #require(heads.count == 4, "\(answer)")
            #expect(heads[0].hasPrefix("HTTP/1.1 200") && heads[0].lowercased().contains("content-length: 100"), "\(heads[0])")
            #expect(heads[1].hasPrefix("HTTP/1.1 200") && heads[1].lowercased().contains("transfer-encoding: chunked"), "\(heads[1])")
            #expect(heads[2].hasPrefix("HTTP/1.1 200") && heads[2].lowercased().contains("connection: close"), "\(heads[2])")
            #expect(heads[3] == #"{"status": 200}"#)
        }

        @Test func http10ClientsGetAResponseTheyCanRead() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            let result = try await curl(["--http1.0", "http://\(proxy.inbound)/download?bytes=1000&chunked=1", "-o", "/dev/null", "-w", "%{http_code} %{size_download}"])
            #expect(result.stdout == "200 1000")
        }
    }
}
