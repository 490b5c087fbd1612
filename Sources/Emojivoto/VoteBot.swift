import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore

/// `emojivoto vote-bot`: votes through web at a steady rate, for a random emoji each time.
/// Answers `GET /healthz` on its port (so `weft up` knows it started).
struct VoteBotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vote-bot", abstract: "Votes through web at a steady rate.")

    @OptionGroup var mesh: MeshOptions

    @Option(help: "Votes per second.")
    var rate: Double = 5

    @Option(help: "The web service's name.")
    var web = "web"

    func run() async throws {
        let port = try mesh.listenPort
        let http = MeshClients.http(outbound: try mesh.outboundAddress)
        let router = Router()
        router.get("/healthz") { _, _ in "ok" }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "vote-bot"))
        let web = self.web
        let interval = Duration.milliseconds(Int64(1000 / max(rate, 0.01)))
        log("vote-bot voting through http://\(web)/ at \(rate)/s")
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await app.runService() }
            group.addTask {
                var shortcodes: [String] = []
                while !Task.isCancelled {
                    if shortcodes.isEmpty {
                        shortcodes = await Self.list(http, web: web)
                    } else if let choice = shortcodes.randomElement() {
                        _ = try? await http.get(web, "/api/vote?choice=\(choice)")
                    }
                    try? await Task.sleep(for: interval)
                }
            }
        }
        try await http.shutdown()
    }

    static func list(_ http: MeshHTTP, web: String) async -> [String] {
        guard let (status, body) = try? await http.get(web, "/api/list"), status == 200,
              let list = try? JSONDecoder().decode([[String: String]].self, from: Data(body.utf8)) else { return [] }
        return list.compactMap { $0["shortcode"] }
    }
}
