import ArgumentParser
import EmojivotoAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Hummingbird

/// `emojivoto web`: the page and JSON API people (and vote-bot) use; calls emoji and voting over gRPC.
///
/// - `GET /`: the emojis to vote for, and the leaderboard.
/// - `GET /api/list`: the emojis, as JSON.
/// - `GET /api/vote?choice=:shortcode:`: one vote (500 when voting fails it).
/// - `GET /api/leaderboard`: votes so far, most first.
struct WebCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "web", abstract: "The web front end: HTML page and JSON API.")

    @OptionGroup var mesh: MeshOptions

    func run() async throws {
        let port = try mesh.listenPort
        let outbound = try mesh.outboundAddress
        let emojiClient = try MeshClients.grpc("emoji", outbound: outbound)
        let votingClient = try MeshClients.grpc("voting", outbound: outbound)
        let emoji = Emojivoto_V1_EmojiService.Client(wrapping: emojiClient)
        let voting = Emojivoto_V1_VotingService.Client(wrapping: votingClient)

        let router = Router()
        router.get("/api/list") { _, _ in
            let list = try await emoji.listAll(Emojivoto_V1_ListAllRequest()).list
            return Self.json(list.map { ["unicode": $0.unicode, "shortcode": $0.shortcode] })
        }
        router.get("/api/vote") { request, _ in
            guard let choice = request.uri.queryParameters.get("choice"), !choice.isEmpty else {
                return Self.json(["error": "give ?choice=:shortcode:"], status: .badRequest)
            }
            let found = try await emoji.findByShortcode(.with { $0.shortcode = choice })
            guard found.hasEmoji else { return Self.json(["error": "\(choice) is not an emoji"], status: .notFound) }
            do {
                _ = try await voting.vote(.with { $0.shortcode = choice })
            } catch let error as RPCError {
                return Self.json(["error": "voting failed: \(error.code): \(error.message)"], status: .internalServerError)
            }
            return Self.json(["voted": found.emoji.unicode])
        }
        router.get("/api/leaderboard") { _, _ in
            let results = try await voting.results(Emojivoto_V1_ResultsRequest()).results
            return Self.json(results.map { ["shortcode": $0.shortcode, "votes": String($0.votes), "unicode": Catalogue.find($0.shortcode)?.unicode ?? "?"] })
        }
        router.get("/") { _, _ in
            let list = try await emoji.listAll(Emojivoto_V1_ListAllRequest()).list
            let links = list.map { #"<a href="/api/vote?choice=\#($0.shortcode)" title="\#($0.shortcode)">\#($0.unicode)</a>"# }.joined(separator: " ")
            let page = """
                <!doctype html><html><head><meta charset="utf-8"><title>Emoji Vote</title></head>
                <body><h1>🗳 Vote for your favourite emoji</h1><p style="font-size:2em">\(links)</p>
                <p><a href="/api/leaderboard">Leaderboard</a></p></body></html>
                """
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: page)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "emojivoto-web"))
        log("web listening on 127.0.0.1:\(port)")
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await emojiClient.runConnections() }
            group.addTask { try await votingClient.runConnections() }
            group.addTask { try await app.runService() }
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONEncoder().encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
