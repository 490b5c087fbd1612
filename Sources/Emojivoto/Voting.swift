import ArgumentParser
import AsyncHTTPClient
import EmojivotoAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOCore
import Synchronization

/// `emojivoto voting`: counts votes (gRPC VotingService). Each vote's shortcode is checked with
/// the emoji service first — by default with emoji's old HTTP/1.1 endpoint (the bug).
struct VotingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "voting", abstract: "The voting service: gRPC VotingService.")

    enum EmojiAPI: String, ExpressibleByArgument, CaseIterable {
        /// `GET http://emoji/api/find`: the old endpoint voting was never moved off.
        case http
        /// `EmojiService.FindByShortcode`: the fix.
        case grpc
    }

    @OptionGroup var mesh: MeshOptions

    @Option(help: "How votes are checked with the emoji service: http (the old endpoint) or grpc.")
    var emojiAPI: EmojiAPI = .http

    func run() async throws {
        let port = try mesh.listenPort
        let outbound = try mesh.outboundAddress
        let http = MeshClients.http(outbound: outbound)
        let emojiClient = try MeshClients.grpc("emoji", outbound: outbound)
        let service = VotingService(api: emojiAPI, http: http, emoji: Emojivoto_V1_EmojiService.Client(wrapping: emojiClient))
        let server = GRPCServer(transport: HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext),
                                services: [service])
        log("voting listening on 127.0.0.1:\(port), checking votes with emoji over \(emojiAPI.rawValue)")
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await emojiClient.runConnections() }
            group.addTask { try await server.serve() }
        }
        try await http.shutdown()
    }
}

struct VotingService: Emojivoto_V1_VotingService.SimpleServiceProtocol {
    let api: VotingCommand.EmojiAPI
    let http: MeshHTTP
    let emoji: Emojivoto_V1_EmojiService.Client<HTTP2ClientTransport.Posix>
    private let votes = Votes()

    init(api: VotingCommand.EmojiAPI, http: MeshHTTP, emoji: Emojivoto_V1_EmojiService.Client<HTTP2ClientTransport.Posix>) {
        self.api = api
        self.http = http
        self.emoji = emoji
    }

    final class Votes: Sendable {
        let counts = Mutex<[String: Int32]>([:])
    }

    func vote(request: Emojivoto_V1_VoteRequest, context: ServerContext) async throws -> Emojivoto_V1_VoteResponse {
        try await check(request.shortcode)
        votes.counts.withLock { $0[request.shortcode, default: 0] += 1 }
        return Emojivoto_V1_VoteResponse()
    }

    func results(request: Emojivoto_V1_ResultsRequest, context: ServerContext) async throws -> Emojivoto_V1_ResultsResponse {
        let counts = votes.counts.withLock { $0 }
        return .with {
            $0.results = counts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { shortcode, count in
                .with { $0.shortcode = shortcode; $0.votes = count }
            }
        }
    }

    /// Is this an emoji? Asks the emoji service, the old way or the right way.
    private func check(_ shortcode: String) async throws {
        switch api {
        case .grpc:
            let found = try await emoji.findByShortcode(.with { $0.shortcode = shortcode })
            guard found.hasEmoji else { throw RPCError(code: .notFound, message: "\(shortcode) is not an emoji") }
        case .http:
            let query = shortcode.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? shortcode
            let status: UInt
            do {
                status = try await http.get("emoji", "/api/find?shortcode=\(query)").status
            } catch {
                throw RPCError(code: .unavailable, message: "cannot reach emoji: \(error)")
            }
            switch status {
            case 200: return
            case 404: throw RPCError(code: .notFound, message: "\(shortcode) is not an emoji")
            default: throw RPCError(code: .internalError, message: "emoji lookup for \(shortcode) failed: HTTP \(status)")
            }
        }
    }
}
