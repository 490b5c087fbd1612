import Foundation
import Testing

extension Integration {
    /// `/metrics` after a known mix of HTTP/1.1 (curl), HTTP/2 (curl, nghttpd) and gRPC (grpcio)
    /// requests with chosen failures: exact counts, checked by promtool and by a real Prometheus.
    @Suite struct Metrics {
        /// One outbound listener, three backends named by authority or gRPC path, each a workload.
        static func config(web: Int, files: Int, grpc: Int, app: String) -> String {
            ProxyUnderTest.config(
                app: app,
                outboundFilters: """
                    - name: protocol-detect
                    - name: route
                      config:
                        routes:
                          - { name: web, match: { authority: web }, backend: web }
                          - { name: files, match: { authority: files }, backend: files }
                          - { name: echo, match: { path: { prefix: /weft.test.Echo/ } }, backend: echo }
                    - name: metrics
                    - name: tap
                    """,
                extra: """
                    identity: { namespace: shop, workload: deploy/frontend, instance: frontend-1 }
                    backends:
                      - { name: web, namespace: shop, workload: deploy/web, endpoints: [127.0.0.1:\(web)] }
                      - { name: files, namespace: shop, workload: deploy/files, endpoints: [127.0.0.1:\(files)] }
                      - { name: echo, namespace: shop, workload: deploy/echo, endpoints: [127.0.0.1:\(grpc)] }
                    """)
        }

        /// Sends the mix; returns the proxy.
        static func sendKnownMix() async throws -> (ProxyUnderTest, [AnyObject]) {
            let web = try await PythonUpstream.start()
            let files = try await NGHTTPServer.start(files: ["index.html": 100])
            let grpc = try await GRPCServer.start()
            let proxy = try await ProxyUnderTest.start(config: config(web: web.port, files: files.port, grpc: grpc.port, app: web.address))
            // HTTP/1.1 to web: 6 × 200, 3 × 503, 2 × 404.
            for (path, times) in [("/echo", 6), ("/status/503", 3), ("/status/404", 2)] {
                for _ in 0..<times {
                    _ = try await curl(["-s", "-o", "/dev/null", "-H", "Host: web", "http://\(proxy.outbound)\(path)"])
                }
            }
            // HTTP/2 (prior knowledge, nghttp) to files: 4 × 200, 1 × 404, as concurrent streams of one connection.
            let h2 = try await run("/usr/bin/nghttp", ["-n", "-H", ":authority: files"]
                                   + (1...4).map { "http://\(proxy.outbound)/index.html?\($0)" } + ["http://\(proxy.outbound)/missing"])
            #expect(h2.status == 0, "nghttp: \(h2.stderr)")
            // gRPC unary calls: 5 OK, 3 NOT_FOUND, 2 UNAVAILABLE (statuses set by the server).
            let calls = try await run(Paths.pythonExecutable(), [Paths.fixtures.appendingPathComponent("grpc_peer.py").path,
                                                                 "calls", proxy.outbound, "OK=5,NOT_FOUND=3,UNAVAILABLE=2"])
            #expect(calls.stdout.contains(#""OK": 5"#) && calls.stdout.contains(#""NOT_FOUND": 3"#)
                    && calls.stdout.contains(#""UNAVAILABLE": 2"#), "grpc client saw: \(calls.stdout) \(calls.stderr)")
            // Inbound: 2 requests to the app.
            for _ in 0..<2 { _ = try await curl(["-s", "-o", "/dev/null", "http://\(proxy.inbound)/echo"]) }
            return (proxy, [web, files, grpc])
        }

        @Test func countersAndHistogramsAreExactAfterAKnownMix() async throws {
            let (proxy, peers) = try await Self.sendKnownMix()
            defer { proxy.stop(); _ = peers }
            let scrape = try await proxy.metrics()
            let metrics = Exposition(scrape)
            let own = [#"namespace="shop""#, #"deployment="frontend""#, #"pod="frontend-1""#]
            func dst(_ name: String) -> [String] {
                own + [#"direction="outbound""#, #"dst_service="\#(name)""#, #"dst_namespace="shop""#, #"dst_deployment="\#(name)""#]
            }
            #expect(metrics.sum("request_total", dst("web")) == 11)
            #expect(metrics.sum("response_total", dst("web") + [#"status_code="200""#, #"classification="success""#]) == 6)
            #expect(metrics.sum("response_total", dst("web") + [#"status_code="503""#, #"classification="failure""#]) == 3)
            #expect(metrics.sum("response_total", dst("web") + [#"status_code="404""#, #"classification="success""#]) == 2)
            #expect(metrics.sum("route_request_total", dst("web") + [#"route="web""#]) == 11)

            #expect(metrics.sum("request_total", dst("files")) == 5)
            #expect(metrics.sum("response_total", dst("files") + [#"status_code="200""#, #"classification="success""#]) == 4)
            #expect(metrics.sum("response_total", dst("files") + [#"status_code="404""#, #"classification="success""#]) == 1)

            #expect(metrics.sum("request_total", dst("echo")) == 10)
            #expect(metrics.sum("response_total", dst("echo") + [#"grpc_status_code="0""#, #"classification="success""#]) == 5)
            #expect(metrics.sum("response_total", dst("echo") + [#"grpc_status_code="5""#, #"classification="failure""#]) == 3)
            #expect(metrics.sum("response_total", dst("echo") + [#"grpc_status_code="14""#, #"classification="failure""#]) == 2)
            #expect(metrics.sum("route_response_total", dst("echo") + [#"route="echo""#, #"classification="failure""#]) == 5)

            #expect(metrics.sum("request_total", own + [#"direction="inbound""#]) == 2)
            #expect(metrics.sum("response_total", own + [#"direction="inbound""#, #"status_code="200""#]) == 2)

            // Every response had a first byte: histogram counts equal request counts, the +Inf
            // bucket equals the count, and the sums are plausible (positive, under 5 s each).
            for (service, requests) in [("web", 11.0), ("files", 5.0), ("echo", 10.0)] {
                #expect(metrics.sum("response_latency_ms_count", dst(service)) == requests)
                #expect(metrics.sum("response_latency_ms_bucket", dst(service) + [#"le="+Inf""#]) == requests)
                let latencySum = metrics.sum("response_latency_ms_sum", dst(service))
                #expect(latencySum > 0 && latencySum < requests * 5_000, "\(service) latency sum \(latencySum) ms")
            }
            // TCP: the client connections were counted, and bytes flowed both ways.
            #expect(metrics.sum("tcp_open_total", [#"direction="outbound""#, #"peer="src""#]) >= 13)
            #expect(metrics.sum("tcp_read_bytes_total", [#"direction="outbound""#, #"peer="src""#]) > 1_000)
            #expect(metrics.sum("tcp_write_bytes_total", [#"direction="outbound""#, #"peer="dst""#]) > 1_000)
            #expect(metrics.sum("process_resident_memory_bytes", []) > 1_000_000)
        }

        @Test func promtoolAcceptsTheExposition() async throws {
            let (proxy, peers) = try await Self.sendKnownMix()
            defer { proxy.stop(); _ = peers }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("weft-metrics-\(UUID().uuidString).txt")
            try await proxy.metrics().write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            let check = try await run("/bin/sh", ["-c", "promtool check metrics < '\(file.path)'"])
            // The only lint allowed is the one our Linkerd-compatible names trigger by design
            // (`response_latency_ms`, `route_response_latency_ms`: Linkerd's dashboards query them).
            let problems = (check.stdout + check.stderr).split(separator: "\n").filter {
                !$0.hasSuffix("_latency_ms metric names should not contain abbreviated units")
            }
            #expect(problems.isEmpty, "promtool: \(problems)")
            #expect(check.status == 0 || check.status == 3, "exit \(check.status): 1 would mean it could not parse")
        }

        @Test func aRealPrometheusComputesSuccessRateByRoute() async throws {
            let (proxy, peers) = try await Self.sendKnownMix()
            defer { proxy.stop(); _ = peers }
            let prometheus = try await PrometheusServer.start(scraping: proxy.admin)
            defer { prometheus.stop() }
            // web: 8 of 11 succeeded; echo: 5 of 10; files: 5 of 5.
            let query = #"sum by (route) (route_response_total{classification="success"}) / sum by (route) (route_response_total)"#
            let rates = try await prometheus.queryUntilPresent(query, labels: ["web", "echo", "files"], label: "route")
            #expect(abs((rates["web"] ?? 0) - 8.0 / 11.0) < 1e-9)
            #expect(abs((rates["echo"] ?? 0) - 0.5) < 1e-9)
            #expect(rates["files"] == 1.0)
        }
    }
}

/// A Prometheus text exposition, read line by line.
struct Exposition {
    let lines: [Substring]

    init(_ text: String) {
        lines = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
    }

    /// The sum of every series of `name` whose labels include all of `labels`.
    func sum(_ name: String, _ labels: [String]) -> Double {
        lines.filter { line in
            (line.hasPrefix(name + "{") || line.hasPrefix(name + " ")) && labels.allSatisfy { line.contains($0) }
        }.reduce(0) { $0 + (Double($1.split(separator: " ").last ?? "") ?? 0) }
    }
}

/// Debian's Prometheus, scraping its targets every second, with its own storage in a temp folder.
final class PrometheusServer {
    let process: ChildProcess
    let port: Int
    let directory: URL

    private init(process: ChildProcess, port: Int, directory: URL) {
        self.process = process
        self.port = port
        self.directory = directory
    }

    static func start(scraping target: String) async throws -> PrometheusServer {
        try await start(scraping: [target])
    }

    static func start(scraping targets: [String]) async throws -> PrometheusServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-prom-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("prometheus.yml")
        try """
            global: { scrape_interval: 1s, evaluation_interval: 1s }
            scrape_configs:
              - job_name: weft-proxy
                static_configs: [{ targets: [\(targets.map { "'\($0)'" }.joined(separator: ", "))] }]
            """.write(to: config, atomically: true, encoding: .utf8)
        let port = freePort()
        let process = ChildProcess("/usr/bin/prometheus", [
            "--config.file=\(config.path)", "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(port)",
        ])
        try process.start()
        return PrometheusServer(process: process, port: port, directory: directory)
    }

    /// Runs an instant query until every `labels` value appears (scrapes take a moment); value by label.
    func queryUntilPresent(_ query: String, labels: [String], label: String, timeout: Duration = .seconds(30)) async throws -> [String: Double] {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            let result = try await run(Paths.curl, ["-s", "--max-time", "5", "--data-urlencode", "query=\(query)",
                                                    "http://127.0.0.1:\(port)/api/v1/query"])
            last = result.stdout
            if let json = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
               let data = json["data"] as? [String: Any], let series = data["result"] as? [[String: Any]] {
                var values: [String: Double] = [:]
                for item in series {
                    guard let metric = item["metric"] as? [String: String], let name = metric[label],
                          let value = item["value"] as? [Any], let text = value.last as? String, let number = Double(text) else { continue }
                    values[name] = number
                }
                if labels.allSatisfy({ values[$0] != nil }) { return values }
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw TestFailure("Prometheus never answered \(query) for \(labels): \(last)\n\(process.output.suffix(2_000))")
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}
