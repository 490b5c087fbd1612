import Foundation
import Testing

extension Integration {
    /// The story Weft exists to tell, end to end: the emojivoto demo under `weft up`, a quarter of
    /// the votes failing, and the commands that find out where — then the fix.
    @Suite struct Demo {
        /// The bottom quarter of emoji's list: what the old HTTP/1.1 endpoint fails for.
        static let brokenInOldEndpoint: Set<String> = [":guitar:", ":avocado:", ":panda_face:", ":watermelon:", ":zap:"]

        static func rate(_ row: [String: Any]?) -> Double? { row?["successRate"] as? Double }

        /// JSON lines of `weft tap … -o json`, grouped per request: path, status, gRPC status.
        static func requests(_ output: String) throws -> [(path: String, status: Int?, grpcStatus: Int?)] {
            var byID: [Int: (path: String, status: Int?, grpcStatus: Int?)] = [:]
            var order: [Int] = []
            for line in output.split(separator: "\n") {
                guard let event = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw TestFailure("not JSON: \(line)")
                }
                let id = (event["context"] as? [String: Any])?["id"] as? Int ?? -1
                if let request = event["requestInit"] as? [String: Any] {
                    byID[id] = (request["path"] as? String ?? "", nil, nil)
                    order.append(id)
                }
                if let response = event["responseInit"] as? [String: Any] { byID[id]?.status = response["status"] as? Int }
                if let end = event["responseEnd"] as? [String: Any] { byID[id]?.grpcStatus = end["grpcStatus"] as? Int }
            }
            return order.compactMap { byID[$0] }
        }

        @Test func statTapAndDiagnoseFindTheVotingToEmojiBugAndTheFixShowsEverywhereHealthy() async throws {
            let demo = try String(contentsOf: Paths.packageRoot.appendingPathComponent("config/demo/emojivoto.yaml"), encoding: .utf8)
            let mesh = try await MeshUnderTest.start(mesh: demo)
            defer { mesh.stop() }

            // 1. Every workload meshed; web, voting and emoji below 100% once enough votes went by.
            let rows = try await mesh.stat(["deploy", "-n", "emojivoto"], until: { rows in
                (rows["voting"]?["requests"] as? Int ?? 0) >= 60 && (Self.rate(rows["voting"]) ?? 1) < 1
            }, timeout: .seconds(60))
            #expect(Set(rows.keys) == ["web", "emoji", "voting", "vote-bot"])
            #expect(rows.values.allSatisfy { $0["meshed"] as? String == "1/1" }, "\(rows)")
            for name in ["web", "voting", "emoji"] {
                #expect((Self.rate(rows[name]) ?? 1) < 1, "\(name): \(rows[name] ?? [:])")
            }
            // Only the bottom quarter fails: most votes still go through.
            #expect((Self.rate(rows["voting"]) ?? 0) > 0.5, "\(rows["voting"] ?? [:])")

            // web's page and JSON API, through its proxy, as a person (or vote-bot) sees them.
            let web = try #require(mesh.inbound["web-0"])
            let page = try await curl(["http://\(web)/"])
            #expect(page.stdout.contains("Vote for your favourite emoji") && page.stdout.contains(#"href="/api/vote?choice=:doughnut:""#), "\(page.stdout)")
            let list = try JSONSerialization.jsonObject(with: Data(try await curl(["http://\(web)/api/list"]).stdout.utf8)) as? [[String: String]]
            #expect(list?.count == 20)
            let vote = try await curl(["-w", "\\n%{http_code}", "http://\(web)/api/vote?choice=:doughnut:"])
            #expect(vote.stdout.hasSuffix("\n200"), "\(vote.stdout)")
            let broken = try await curl(["-w", "\\n%{http_code}", "http://\(web)/api/vote?choice=:zap:"])
            #expect(broken.stdout.hasSuffix("\n500") && broken.stdout.contains("voting failed"), "\(broken.stdout)")
            let leaderboard = try JSONSerialization.jsonObject(with: Data(try await curl(["http://\(web)/api/leaderboard"]).stdout.utf8)) as? [[String: String]]
            #expect(leaderboard?.contains { $0["shortcode"] == ":doughnut:" && Int($0["votes"] ?? "0")! >= 1 } == true, "\(leaderboard ?? [])")

            // 2. From web: the edge to voting fails, the edge to emoji does not.
            let fromWeb = try await mesh.stat(["deploy", "-n", "emojivoto", "--from", "deploy/web"])
            #expect((Self.rate(fromWeb["voting"]) ?? 1) < 1)
            #expect(Self.rate(fromWeb["emoji"]) == 1)
            // 3. From voting: the edge to emoji fails.
            let fromVoting = try await mesh.stat(["deploy", "-n", "emojivoto", "--from", "deploy/voting"])
            #expect(Array(fromVoting.keys) == ["emoji"])
            #expect((Self.rate(fromVoting["emoji"]) ?? 1) < 1)
            // 4. Into emoji: fine from web, failing from voting.
            let toEmoji = try await mesh.stat(["deploy", "-n", "emojivoto", "--to", "deploy/emoji"])
            #expect(Self.rate(toEmoji["web"]) == 1)
            #expect((Self.rate(toEmoji["voting"]) ?? 1) < 1)

            // 5. Tap: voting's calls to emoji use the old HTTP/1.1 endpoint, 500 exactly for the bottom of the list…
            let votingTap = try await mesh.weft(["tap", "deploy/voting", "-n", "emojivoto", "--to", "deploy/emoji", "-o", "json", "--limit", "40"])
            let votingCalls = try Self.requests(votingTap.stdout)
            #expect(votingCalls.count >= 40, "\(votingTap.stdout.suffix(500)) \(votingTap.stderr)")
            #expect(votingCalls.contains { $0.status == 500 })
            for call in votingCalls {
                #expect(call.path.hasPrefix("/api/find?shortcode="), "\(call.path)")
                let shortcode = String(call.path.dropFirst("/api/find?shortcode=".count)).removingPercentEncoding ?? ""
                #expect(call.status == (Self.brokenInOldEndpoint.contains(shortcode) ? 500 : 200), "\(shortcode): \(call.status ?? -1)")
            }
            // …while web's calls to emoji are gRPC, all OK.
            let webTap = try await mesh.weft(["tap", "deploy/web", "-n", "emojivoto", "--to", "deploy/emoji", "-o", "json", "--limit", "10"])
            let webCalls = try Self.requests(webTap.stdout)
            #expect(webCalls.count >= 10)
            #expect(webCalls.allSatisfy { $0.path.hasPrefix("/emojivoto.v1.EmojiService/") && $0.status == 200 && $0.grpcStatus == 0 }, "\(webCalls)")

            // 6. diagnose names voting → emoji as the origin, with failing requests on the old path.
            let diagnosis = try await mesh.weft(["diagnose", "-n", "emojivoto", "--sample", "5s"])
            #expect(diagnosis.status == 1)
            let lines = diagnosis.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "Failures start at 1 place (last 1m):", "\(diagnosis.stdout)")
            #expect(lines.contains { $0.hasPrefix("× voting → emoji") }, "\(diagnosis.stdout)")
            #expect(lines.contains { $0.hasPrefix("    emoji called by web: 100.00% success") }, "\(diagnosis.stdout)")
            #expect(lines.contains { $0.hasPrefix("    shows up further as: web → voting") }, "\(diagnosis.stdout)")
            #expect(lines.contains { $0.hasPrefix("      GET /api/find?shortcode=") && $0.hasSuffix(":status=500") }, "\(diagnosis.stdout)")

            // 7. The fix: voting checks votes over gRPC. weft up restarts it when its command changes.
            try demo.replacingOccurrences(of: "voting --emoji-api http", with: "voting --emoji-api grpc")
                .write(to: mesh.meshFile, atomically: true, encoding: .utf8)
            _ = try await mesh.process.waitForOutput("weft up: restarted emojivoto.voting-0", timeout: .seconds(30))
            try await Task.sleep(for: .seconds(12))
            let fixed = try await mesh.stat(["deploy", "-n", "emojivoto", "-t", "10s"])
            for name in ["web", "voting", "emoji"] {
                #expect((fixed[name]?["requests"] as? Int ?? 0) > 0, "\(name): \(fixed[name] ?? [:])")
                #expect(Self.rate(fixed[name]) == 1, "\(name): \(fixed[name] ?? [:])")
            }
            let healthy = try await mesh.weft(["diagnose", "-n", "emojivoto", "-t", "10s", "--sample", "0s"])
            #expect(healthy.status == 0)
            #expect(healthy.stdout.hasPrefix("No failures in the last 10s"), "\(healthy.stdout)")
        }
    }
}
