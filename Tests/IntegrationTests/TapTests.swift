import Foundation
import Testing

extension Integration {
    /// `weft tap` (the CLI) against a running proxy's tap listener, with real traffic from curl and h2load.
    @Suite struct Tap {
        static func startProxy() async throws -> (ProxyUnderTest, PythonUpstream) {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            return (proxy, upstream)
        }

        func tap(_ proxy: ProxyUnderTest, _ arguments: [String]) throws -> ChildProcess {
            let process = ChildProcess(Paths.weftBinary, ["tap", "--proxy", proxy.tap ?? "?"] + arguments)
            try process.start()
            return process
        }

        /// Each line of JSON output as an object (every line must parse).
        func jsonLines(_ output: String) throws -> [[String: Any]] {
            try output.split(separator: "\n").map { line in
                guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw TestFailure("not a JSON object: \(line)")
                }
                return object
            }
        }

        @Test func eachTapperSeesExactlyTheRequestsItsFiltersMatch() async throws {
            let (proxy, upstream) = try await Self.startProxy()
            defer { proxy.stop(); _ = upstream }
            let byPath = try tap(proxy, ["--path", "/echo/a", "--method", "GET", "--limit", "3", "-o", "json"])
            let byMethod = try tap(proxy, ["--method", "POST", "--limit", "2", "-o", "json"])
            try await proxy.waitForTaps(2)

            for path in ["/echo/a/1", "/echo/b/1", "/echo/a/2", "/status/404", "/echo/a/3"] {
                _ = try await curl(["-s", "-o", "/dev/null", "http://\(proxy.inbound)\(path)"])
            }
            for _ in 0..<2 {
                _ = try await curl(["-s", "-o", "/dev/null", "-X", "POST", "--data", "x", "http://\(proxy.inbound)/echo/a/post"])
            }
            // Both taps end by themselves once their limit's requests are over.
            #expect(await byPath.waitForExit() == 0, "tap output: \(byPath.output)")
            #expect(await byMethod.waitForExit() == 0, "tap output: \(byMethod.output)")

            let pathEvents = try jsonLines(byPath.output)
            let requests = pathEvents.compactMap { $0["requestInit"] as? [String: Any] }
            #expect(requests.compactMap { $0["path"] as? String } == ["/echo/a/1", "/echo/a/2", "/echo/a/3"])
            #expect(requests.allSatisfy { $0["method"] as? String == "GET" })
            #expect(pathEvents.compactMap { $0["responseInit"] as? [String: Any] }.compactMap { $0["status"] as? Int } == [200, 200, 200])
            let ends = pathEvents.compactMap { $0["responseEnd"] as? [String: Any] }
            #expect(ends.count == 3)
            #expect(ends.allSatisfy { ($0["responseBytes"] as? Int ?? 0) > 0 })

            let postEvents = try jsonLines(byMethod.output)
            let posts = postEvents.compactMap { $0["requestInit"] as? [String: Any] }
            #expect(posts.count == 2 && posts.allSatisfy { $0["method"] as? String == "POST" })
            // With the last tapper gone, the proxy is back to idle.
            try await proxy.waitForTaps(0)
        }

        @Test func linesReadLikeLinkerdTap() async throws {
            let (proxy, upstream) = try await Self.startProxy()
            defer { proxy.stop(); _ = upstream }
            let tapper = try tap(proxy, ["--limit", "1", "--header", "user-agent"])
            try await proxy.waitForTaps(1)
            _ = try await curl(["-s", "-o", "/dev/null", "-A", "weft-test", "http://\(proxy.inbound)/status/503"])
            #expect(await tapper.waitForExit() == 0)
            let lines = tapper.output.split(separator: "\n")
            #expect(lines.count == 3, "\(tapper.output)")
            let request = try Regex(#"^req id=\d+ proxy=in src=127\.0\.0\.1:\d+ dst="# + upstream.address
                                    + #" tls=false :method=GET :authority=127\.0\.0\.1:\d+ :path=/status/503 user-agent=weft-test$"#)
            #expect(lines.first?.contains(request) == true, "\(lines.first ?? "")")
            #expect(lines.dropFirst().first?.contains(#/^rsp id=\d+ proxy=in .* :status=503 latency=\d+µs$/#) == true)
            #expect(lines.last?.contains(#/^end id=\d+ proxy=in .* duration=\d+µs response-length=\d+B$/#) == true)
        }

        @Test func maxRPSBoundsWhatATapperIsShown() async throws {
            let (proxy, upstream) = try await Self.startProxy()
            defer { proxy.stop(); _ = upstream }
            let tapper = try tap(proxy, ["--max-rps", "5", "-o", "json"])
            try await proxy.waitForTaps(1)
            let started = ContinuousClock.now
            let load = try await run("/usr/bin/h2load", ["--h1", "-n", "300", "-c", "4", "http://\(proxy.inbound)/echo"])
            let seconds = (ContinuousClock.now - started).components.seconds + 1
            #expect(load.stdout.contains("300 succeeded"), "\(load.stdout)")
            try await Task.sleep(for: .milliseconds(500))
            tapper.stop()
            let shown = try jsonLines(tapper.output).filter { $0["requestInit"] != nil }.count
            // At most 5 in each clock second the run touched; at least some were shown.
            #expect(shown >= 1 && shown <= 5 * Int(seconds + 1), "shown \(shown) over \(seconds) s")
        }

        @Test func aTapperThatStopsReadingNeverStopsTraffic() async throws {
            let (proxy, upstream) = try await Self.startProxy()
            defer { proxy.stop(); _ = upstream }
            let tapper = try tap(proxy, ["--max-rps", "100000"])
            try await proxy.waitForTaps(1)
            tapper.signal(SIGSTOP)   // the tapper reads nothing from now on
            defer { tapper.signal(SIGCONT); tapper.stop() }
            let load = try await run("/usr/bin/h2load", ["--h1", "-n", "20000", "-c", "8", "http://\(proxy.inbound)/echo"],
                                     timeout: .seconds(120))
            #expect(load.stdout.contains("20000 succeeded"), "\(load.stdout)")
            // What did not fit the tap's buffer was dropped and counted, not queued without bound.
            let dropped = try await proxy.metric("weft_tap_dropped_events_total") ?? 0
            let rss = try await proxy.metric("process_resident_memory_bytes") ?? 0
            #expect(rss < 200_000_000, "RSS \(rss) with a stuck tapper")
            // 60 000 events cannot fit the tap's buffer and the sockets' buffers toward a stopped reader.
            #expect(dropped > 0)
            // Once it reads again, the tapper is told what it missed.
            tapper.signal(SIGCONT)
            _ = try await tapper.waitForOutput("dropped \\d+ requests and \\d+ events")
        }

        @Test func aTapPipedIntoHeadEndsQuietlyWhenHeadHasReadEnough() async throws {
            let (proxy, upstream) = try await Self.startProxy()
            defer { proxy.stop(); _ = upstream }
            // `pipefail`: the pipeline's status is the tap's.
            let pipeline = ChildProcess("/bin/bash", ["-c", #"set -o pipefail; "$0" tap --proxy "$1" | head -n 1"#,
                                                      Paths.weftBinary, proxy.tap ?? "?"])
            try pipeline.start()
            defer { pipeline.stop() }
            try await proxy.waitForTaps(1)
            // head exits after the first line; the tap learns it on a later write.
            var requests = 0
            while pipeline.isRunning && requests < 50 {
                _ = try await curl(["-s", "-o", "/dev/null", "http://\(proxy.inbound)/echo/\(requests)"])
                requests += 1
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(await pipeline.waitForExit() == 0, "after \(requests) requests: \(pipeline.output)")
            #expect(pipeline.output.hasPrefix("req id="), "\(pipeline.output)")
            #expect(!pipeline.output.contains("Fatal error"), "\(pipeline.output)")
            try await proxy.waitForTaps(0)
        }

        @Test func aKilledTapperClosesItsTapAtOnceWithNoTraffic() async throws {
            let (proxy, upstream) = try await Self.startProxy()
            defer { proxy.stop(); _ = upstream }
            let tapper = try tap(proxy, [])
            try await proxy.waitForTaps(1)
            tapper.signal(SIGKILL)
            // No request comes: the proxy learns from the closed connection, not from a failed write.
            try await proxy.waitForTaps(0, timeout: .seconds(5))
        }

        @Test func aProxyStoppingWithATapperAttachedExitsCleanlyAndTheTapperSaysWhy() async throws {
            let (proxy, upstream) = try await Self.startProxy()
            defer { proxy.stop(); _ = upstream }
            let tapper = try tap(proxy, [])
            try await proxy.waitForTaps(1)
            proxy.process.signal(SIGTERM)
            #expect(await proxy.process.waitForExit() == 0, "\(proxy.process.output)")
            // Its event loops shut down after the tap server let go of them, not under it.
            #expect(!proxy.process.output.contains("Cannot schedule tasks"), "\(proxy.process.output)")
            #expect(await tapper.waitForExit() == 1)
            #expect(tapper.output.contains("ended the tap"), "\(tapper.output)")
            #expect(!tapper.output.contains("Usage:"), "\(tapper.output)")
        }

        @Test func anUnreachableProxyIsOneClearError() async throws {
            let result = try await run(Paths.weftBinary, ["tap", "--proxy", "127.0.0.1:\(freePort())"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("cannot reach the tap listener"), "\(result.stderr)")
        }

        @Test func anInvalidRegexIsRejectedByTheProxy() async throws {
            let (proxy, upstream) = try await Self.startProxy()
            defer { proxy.stop(); _ = upstream }
            let result = try await run(Paths.weftBinary, ["tap", "--proxy", proxy.tap ?? "?", "--path-regex", "/(unclosed"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("the proxy rejected the tap: path regex"), "\(result.stderr)")
        }
    }
}
