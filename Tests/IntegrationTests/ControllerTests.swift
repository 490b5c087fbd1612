import Foundation
import Testing

extension Integration {
    /// The controller and the mesh-level CLI, end to end under `weft up`: three Python workloads
    /// (config/example-apps/service.py) calling each other through their sidecars, one edge
    /// failing exactly one call in two.
    @Suite struct Controller {
        /// web → books → authors, web → authors; books' calls to authors fail when their number is even.
        static let shelf = """
            workloads:
              - name: web
                namespace: shelf
                command: [python3, \(MeshUnderTest.serviceScript), --name, web, --calls, "books:/books,authors:/authors"]
              - name: books
                namespace: shelf
                command: [python3, \(MeshUnderTest.serviceScript), --name, books, --calls, "authors:/authors/fragile"]
              - name: authors
                namespace: shelf
                replicas: 2
                command: [python3, \(MeshUnderTest.serviceScript), --name, authors, --fail-path, /authors/fragile, --fail-every, "2"]
            """

        /// Sends `count` requests to web's proxy; returns the status codes curl saw.
        static func traffic(_ mesh: MeshUnderTest, count: Int) async throws -> [String] {
            guard let web = mesh.inbound["web-0"] else { throw TestFailure("no web-0 in weft up's table: \(mesh.process.output)") }
            return try await traffic(to: web, count: count)
        }

        static func traffic(to web: String, count: Int) async throws -> [String] {
            // One `-o` per URL: curl writes each body where its own `-o` says.
            let urls = (1...count).flatMap { ["-o", "/dev/null", "http://\(web)/?i=\($0)"] }
            let result = try await curl(["-w", "%{http_code}\\n"] + urls)
            return result.stdout.split(separator: "\n").map(String.init)
        }

        static func count(_ row: [String: Any]?) -> (successes: Int, requests: Int) {
            (row?["successes"] as? Int ?? -1, row?["requests"] as? Int ?? -1)
        }

        @Test func statShowsEverySuccessRateExactlyAndFromToIsolateTheFailingEdge() async throws {
            let mesh = try await MeshUnderTest.start(mesh: Self.shelf)
            defer { mesh.stop() }
            let codes = try await Self.traffic(mesh, count: 20)
            #expect(codes.filter { $0 == "200" }.count == 10, "\(codes)")
            #expect(codes.filter { $0 == "502" }.count == 10, "\(codes)")

            // Inbound, per workload: web answered 20 (10 failed), books 20 (10), authors 40 (10).
            let rows = try await mesh.stat(["deploy", "-n", "shelf"]) { Self.count($0["web"]).requests == 20 && Self.count($0["authors"]).requests == 40 }
            #expect(Self.count(rows["web"]) == (10, 20))
            #expect(Self.count(rows["books"]) == (10, 20))
            #expect(Self.count(rows["authors"]) == (30, 40))
            #expect(rows["authors"]?["meshed"] as? String == "2/2")
            #expect(rows["web"]?["meshed"] as? String == "1/1")
            #expect((rows["web"]?["successRate"] as? Double) == 0.5)
            #expect((rows["authors"]?["latencyP50Ms"] as? Double ?? 0) > 0)

            // --from deploy/web: its call to books fails half the time, its call to authors never.
            let fromWeb = try await mesh.stat(["deploy", "-n", "shelf", "--from", "deploy/web"])
            #expect(Set(fromWeb.keys) == ["books", "authors"])
            #expect(Self.count(fromWeb["books"]) == (10, 20))
            #expect(Self.count(fromWeb["authors"]) == (20, 20))
            // --from deploy/books: the failing edge itself.
            let fromBooks = try await mesh.stat(["deploy", "-n", "shelf", "--from", "deploy/books"])
            #expect(Set(fromBooks.keys) == ["authors"])
            #expect(Self.count(fromBooks["authors"]) == (10, 20))
            // --to deploy/authors: fine from web, failing from books.
            let toAuthors = try await mesh.stat(["deploy", "-n", "shelf", "--to", "deploy/authors"])
            #expect(Self.count(toAuthors["web"]) == (20, 20))
            #expect(Self.count(toAuthors["books"]) == (10, 20))
            // One row by name; services as callers see them.
            let one = try await mesh.stat(["deploy/books", "-n", "shelf"])
            #expect(Array(one.keys) == ["books"])
            let services = try await mesh.stat(["svc", "-n", "shelf"])
            #expect(Self.count(services["authors"]) == (30, 40))

            // The table, as a user reads it.
            let table = try await mesh.weft(["stat", "deploy", "-n", "shelf"])
            #expect(table.status == 0)
            #expect(table.stdout.hasPrefix("NAME      MESHED   SUCCESS   RPS"), "\(table.stdout)")
            #expect(table.stdout.contains("authors   2/2      75.00%"), "\(table.stdout)")
            let edges = try await mesh.weft(["edges", "deploy", "-n", "shelf"])
            #expect(edges.stdout.contains("books   authors   shelf    shelf    50.00%"), "\(edges.stdout)")
            #expect(edges.stdout.contains("web     books     shelf    shelf    50.00%"), "\(edges.stdout)")

            // Errors a user can act on.
            let unknown = try await mesh.weft(["stat", "deploy/nope", "-n", "shelf"])
            #expect(unknown.status != 0)
            #expect(unknown.stderr.contains("no deploy named nope in namespace shelf"), "\(unknown.stderr)")
            let badKind = try await mesh.weft(["stat", "gizmo"])
            #expect(badKind.stderr.contains("'gizmo' is not a resource"), "\(badKind.stderr)")
            let empty = try await mesh.weft(["stat", "deploy", "-n", "shelf", "--from", "deploy/authors"])
            #expect(empty.status != 0)
            #expect(empty.stderr.contains("no traffic sent by deploy/authors in the last 1m"), "\(empty.stderr)")
            let down = try await run(Paths.weftBinary, ["stat", "deploy", "--controller", "http://127.0.0.1:\(freePort())"])
            #expect(down.status != 0)
            #expect(down.stderr.contains("cannot reach the weft controller"), "\(down.stderr)")
            #expect(down.stderr.contains("weft up -f"), "\(down.stderr)")

            let check = try await mesh.weft(["check"])
            #expect(check.status == 0, "\(check.stdout)")
            #expect(check.stdout.contains("Status check results are √"))
            let version = try await mesh.weft(["version"])
            #expect(version.stdout.contains("Controller version: 0.1.0-dev"))
            #expect(version.stdout.contains("(4 proxies)"), "\(version.stdout)")
        }

        @Test func tapThroughTheControllerShowsExactlyTheEdgeAsked() async throws {
            let mesh = try await MeshUnderTest.start(mesh: Self.shelf)
            defer { mesh.stop() }
            let admin = try await mesh.proxies().first { $0["instance"] as? String == "books-0" }?["adminAddress"] as? String
            let tap = ChildProcess(Paths.weftBinary, ["tap", "deploy/books", "-n", "shelf", "--to", "deploy/authors", "-o", "json",
                                                      "--limit", "6", "--controller", mesh.api])
            try tap.start()
            defer { tap.stop() }
            let webTap = ChildProcess(Paths.weftBinary, ["tap", "deploy/web", "-n", "shelf", "--to", "deploy/authors",
                                                         "--limit", "4", "--controller", mesh.api])
            try webTap.start()
            defer { webTap.stop() }
            // Wait until the taps are open on the proxies.
            try await waitForOpenTaps(1, admin: admin ?? "?")
            _ = try await Self.traffic(mesh, count: 6)
            #expect(await tap.waitForExit(timeout: .seconds(20)) == 0, "\(tap.output)")
            #expect(await webTap.waitForExit(timeout: .seconds(20)) == 0, "\(webTap.output)")

            let events = try tap.output.split(separator: "\n").map { line in
                guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw TestFailure("not a JSON object: \(line)")
                }
                return object
            }
            #expect(events.count == 18, "\(tap.output)")  // 6 requests × request, response, end
            var statusByPath: [String: Int] = [:]
            var paths: [Int: String] = [:]
            for event in events {
                let context = event["context"] as? [String: Any] ?? [:]
                #expect(context["direction"] as? String == "DIRECTION_OUTBOUND")
                #expect((context["source"] as? [String: Any])?["workload"] as? String == "deployment/books")
                #expect((context["destination"] as? [String: Any])?["workload"] as? String == "deployment/authors")
                let id = context["id"] as? Int ?? -1
                if let request = event["requestInit"] as? [String: Any] { paths[id] = request["path"] as? String }
                if let response = event["responseInit"] as? [String: Any], let path = paths[id] {
                    statusByPath[path] = response["status"] as? Int
                }
            }
            #expect(statusByPath.count == 6, "\(statusByPath)")
            for (path, status) in statusByPath {
                #expect(path.hasPrefix("/authors/fragile?n="))
                let n = Int(path.split(separator: "=").last ?? "") ?? -1
                #expect(status == (n % 2 == 0 ? 500 : 200), "\(path) → \(status)")
            }
            // web's calls to authors: all succeed, one line per event, Linkerd-style.
            let lines = webTap.output.split(separator: "\n")
            #expect(lines.filter { $0.hasPrefix("rsp ") }.count == 4, "\(webTap.output)")
            #expect(lines.filter { $0.hasPrefix("rsp ") }.allSatisfy { $0.contains(":status=200") }, "\(webTap.output)")
            #expect(lines.filter { $0.hasPrefix("req ") }.allSatisfy { $0.contains(":authority=authors :path=/authors?n=") }, "\(webTap.output)")

            let unknown = try await mesh.weft(["tap", "deploy/nope", "-n", "shelf"])
            #expect(unknown.status != 0)
            #expect(unknown.stderr.contains("no connected proxy carries deploy/nope"), "\(unknown.stderr)")
        }

        /// A port `weft up` picks is bound later by its app or proxy; in the kernel's ephemeral range
        /// any outgoing connection could take it first (CI once saw an app fail with "Address
        /// already in use" that way), so every pick lies below that range.
        /// (A machine whose ephemeral range starts at 1024 leaves no room below it: `weft up` then
        /// takes the kernel's picks, and there is nothing to check.)
        @Test(.enabled(if: ephemeralPortRangeStart().map { $0 > 1024 } ?? false))
        func everyPortWeftUpPicksLiesBelowTheEphemeralRangeWhereNoConnectionCanTakeIt() async throws {
            let mesh = try await MeshUnderTest.start(mesh: Self.shelf)
            defer { mesh.stop() }
            let ephemeralLow = try #require(ephemeralPortRangeStart())
            let rows = mesh.process.output.split(separator: "\n").filter { $0.hasPrefix("shelf ") }
            #expect(rows.count == 4, "\(mesh.process.output)")
            // APP, INBOUND, OUTBOUND, ADMIN per row.
            let ports = rows.flatMap { $0.matches(of: /127\.0\.0\.1:(\d+)/).compactMap { Int($0.1) } }
            #expect(ports.count == 16, "\(rows)")
            #expect(Set(ports).count == 16, "\(ports)")
            #expect(ports.allSatisfy { $0 >= 1024 && $0 < ephemeralLow }, "\(ports) vs ephemeral range from \(ephemeralLow)")
        }

        @Test func aTapperThatLeavesClosesTheProxiesTapsWithNoTraffic() async throws {
            let mesh = try await MeshUnderTest.start(mesh: Self.shelf)
            defer { mesh.stop() }
            let admin = try await mesh.proxies().first { $0["instance"] as? String == "books-0" }?["adminAddress"] as? String ?? "?"
            // Matches nothing: no event will ever be written toward the tapper.
            let tap = ChildProcess(Paths.weftBinary, ["tap", "deploy/books", "-n", "shelf", "--path", "/matches-nothing",
                                                      "--controller", mesh.api])
            try tap.start()
            defer { tap.stop() }
            try await waitForOpenTaps(1, admin: admin)
            tap.signal(SIGKILL)
            try await waitForOpenTaps(0, admin: admin, timeout: .seconds(5))
        }

        @Test func diagnoseNamesTheEdgeWhereFailuresStartWithLiveFailingRequests() async throws {
            let mesh = try await MeshUnderTest.start(mesh: Self.shelf)
            defer { mesh.stop() }
            _ = try await Self.traffic(mesh, count: 20)
            _ = try await mesh.stat(["deploy", "-n", "shelf"]) { Self.count($0["authors"]).requests == 40 }
            // Traffic goes on while diagnose taps for failing requests.
            let web = try #require(mesh.inbound["web-0"])
            let more = Task { try await Self.traffic(to: web, count: 40) }
            let result = try await mesh.weft(["diagnose", "-n", "shelf", "--sample", "5s"])
            _ = try await more.value
            #expect(result.status == 1, "failures found: exit 1")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "Failures start at 1 place (last 1m):", "\(result.stdout)")
            #expect(lines.contains { $0.hasPrefix("× books → authors   50.00% success") }, "\(result.stdout)")
            #expect(lines.contains("    authors called by web: 100.00% success (20/20)"), "\(result.stdout)")
            #expect(lines.contains { $0.hasPrefix("    shows up further as: web → books   50.00% success") }, "\(result.stdout)")
            let samples = lines.filter { $0.hasPrefix("      GET /authors/fragile?n=") }
            #expect(!samples.isEmpty && samples.allSatisfy { $0.hasSuffix(":authority=authors  :status=500") }, "\(result.stdout)")
            #expect(lines.contains("Failing, but passed on from further down:"))

            let json = try await mesh.weft(["diagnose", "deploy/authors", "-n", "shelf", "--sample", "0s", "-o", "json"])
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            let origins = object?["origins"] as? [[String: Any]] ?? []
            #expect(origins.count == 1)
            #expect((origins.first?["edge"] as? [String: Any])?["source"] as? String == "books", "\(json.stdout)")
        }

        @Test func sigtermStopsTheWholeMeshAndLeavesNoProcessBehind() async throws {
            let mesh = try await MeshUnderTest.start(mesh: Self.shelf)
            defer { mesh.stop() }
            let tree = mesh.descendants()
            // 4 proxies and 4 apps at least (a shell may sit between weft up and an app).
            #expect(tree.count >= 8, "\(tree)")
            mesh.process.signal(SIGTERM)
            let status = await mesh.process.waitForExit(timeout: .seconds(30))
            #expect(status == 0, "\(mesh.process.output.suffix(2_000))")
            #expect(mesh.process.output.contains("weft up: stopped"))
            let survivors = tree.filter(isAlive)
            #expect(survivors.isEmpty, "still running: \(survivors)")
        }

        /// Rates divide requests by the part of the window the proxies were up for; the mesh here is
        /// seconds old, so that time differs between two reads: each report must be consistent.
        static func expectRatesMatchCoveredTime(api: String) async throws {
            let result = try await curl(["\(api)/api/v1/stat?resource=deploy&namespace=shelf&window=1m"])
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            let seconds = report?["seconds"] as? Double ?? 0
            // The mesh is seconds old: rates cover its lifetime, not the whole minute.
            #expect(seconds > 0 && seconds < 60, "\(result.stdout)")
            let rows = report?["rows"] as? [[String: Any]] ?? []
            #expect(rows.contains { ($0["requests"] as? Int ?? 0) > 0 }, "rows with traffic to check: \(result.stdout)")
            for row in rows {
                let requests = Double(row["requests"] as? Int ?? 0), rps = row["rps"] as? Double ?? -1
                #expect(abs(rps - requests / seconds) < 1e-9, "\(row)")
            }
        }

        @Test func aControllerWhosePortIsTakenSaysSoAndExits() async throws {
            let mesh = try await MeshUnderTest.start(mesh: Self.shelf)
            defer { mesh.stop() }
            let api = String(mesh.api.dropFirst("http://".count))
            let second = try await run(Paths.weftBinary, ["controller", "--mesh", mesh.meshFile.path,
                                                          "--push-address", "127.0.0.1:\(freePort())", "--api-address", api], timeout: .seconds(30))
            #expect(second.status == 1)
            #expect(second.stderr.contains("cannot listen for the API on \(api): address already in use"), "\(second.stderr)")
            // The running mesh is unaffected.
            #expect(try await mesh.weft(["check"]).status == 0)
        }

        @Test func statFromARealPrometheusMatchesTheControllersOwnScrapes() async throws {
            // The same proxies scraped by Debian's Prometheus every second.
            let mesh = try await MeshUnderTest.start(mesh: Self.shelf)
            defer { mesh.stop() }
            let admins = try await mesh.proxies().compactMap { $0["adminAddress"] as? String }
            #expect(admins.count == 4)
            let prometheus = try await PrometheusServer.start(scraping: admins)
            defer { prometheus.stop() }
            // A second controller on the same mesh file, reading Prometheus instead of scraping.
            let ports = distinctFreePorts(2)
            let api = "127.0.0.1:\(ports[1])"
            let promController = ChildProcess(Paths.weftBinary, [
                "controller", "--mesh", mesh.meshFile.path, "--push-address", "127.0.0.1:\(ports[0])", "--api-address", api,
                "--prometheus-url", "http://127.0.0.1:\(prometheus.port)",
            ], stopsGracefully: true)
            try promController.start()
            defer { promController.stop() }
            _ = try await promController.waitForOutput("weft-controller ready")
            _ = try await Self.traffic(mesh, count: 20)

            // `weft stat --prometheus-url`: the same controller, reading Prometheus for this query.
            let prometheusURL = "http://127.0.0.1:\(prometheus.port)"
            func both(_ arguments: [String], until done: @escaping ([String: [String: Any]]) -> Bool) async throws -> ([String: [String: Any]], [String: [String: Any]]) {
                let embedded = try await mesh.stat(arguments, until: done)
                return (embedded, try await mesh.stat(arguments + ["--prometheus-url", prometheusURL], until: done, timeout: .seconds(30)))
            }
            // Each view, once every row has all its requests in both (scrapes land at different moments).
            for (arguments, totals) in [
                (["deploy", "-n", "shelf"], ["web": 20, "books": 20, "authors": 40]),
                (["deploy", "-n", "shelf", "--from", "deploy/web"], ["books": 20, "authors": 20]),
                (["deploy", "-n", "shelf", "--to", "deploy/authors"], ["web": 20, "books": 20]),
            ] {
                let (embedded, fromPrometheus) = try await both(arguments) { rows in
                    totals.allSatisfy { Self.count(rows[$0.key]).requests == $0.value }
                }
                #expect(Set(embedded.keys) == Set(fromPrometheus.keys), "\(arguments)")
                for (name, row) in embedded {
                    let other = fromPrometheus[name]
                    #expect(Self.count(row) == Self.count(other), "\(arguments) \(name)")
                    for field in ["latencyP50Ms", "latencyP95Ms", "latencyP99Ms"] {
                        #expect(row[field] as? Double == other?[field] as? Double, "\(arguments) \(name) \(field): \(row[field] ?? "-") vs \(other?[field] ?? "-")")
                    }
                }
            }
            // A controller whose default source is Prometheus (`weft controller --prometheus-url`) agrees too.
            let plain = try await mesh.stat(["deploy", "-n", "shelf"])
            let viaController = try await ControllerView(api: "http://\(api)").stat(["deploy", "-n", "shelf"], until: { rows in
                ["web": 20, "books": 20, "authors": 40].allSatisfy { Self.count(rows[$0.key]).requests == $0.value }
            }, timeout: .seconds(30))
            for name in ["web", "books", "authors"] {
                #expect(Self.count(plain[name]) == Self.count(viaController[name]), "\(name)")
                #expect(plain[name]?["latencyP99Ms"] as? Double == viaController[name]?["latencyP99Ms"] as? Double, "\(name)")
            }
            try await Self.expectRatesMatchCoveredTime(api: mesh.api)
            try await Self.expectRatesMatchCoveredTime(api: "http://\(api)")
        }
    }
}

/// The stat CLI against another controller's API (e.g. one reading Prometheus) for the same mesh.
struct ControllerView {
    let api: String

    func stat(_ arguments: [String], until done: ([String: [String: Any]]) -> Bool, timeout: Duration) async throws -> [String: [String: Any]] {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            let result = try await run(Paths.weftBinary, ["stat"] + arguments + ["-o", "json", "--controller", api])
            last = result.stdout + result.stderr
            if result.status == 0, let rows = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] {
                var byName: [String: [String: Any]] = [:]
                for row in rows { byName[row["name"] as? String ?? "?"] = row }
                if done(byName) { return byName }
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw TestFailure("weft stat \(arguments) via \(api) never got there: \(last)")
    }
}
