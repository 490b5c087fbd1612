import Foundation
import NIOCore
import NIOHTTP1

/// What the admin endpoints report; implemented by ``ProxyServer``.
protocol AdminState: Sendable {
    var isReady: Bool { get }
    func configReport() -> ConfigReport
    /// The Prometheus text exposition of every metric, read now.
    func metricsText() -> String
}

/// `/config`: the config in force and how it got there.
struct ConfigReport: Encodable {
    struct Listener: Encodable {
        var address: String
        var filters: [String]
        var app: String?
    }
    var version: String
    var loadedAt: String
    var file: String?
    var reloads: Int
    var rejectedReloads: Int
    var lastReloadError: String?
    var inbound: Listener?
    var outbound: Listener?
    var backends: [String: [String]]
    /// The controller link, when the proxy has one.
    var controller: Controller? = nil
    var source: String

    struct Controller: Encodable {
        var address: String
        var connected: Bool
        var lastError: String?
        var lastSnapshot: String?
    }
}

/// The admin listener: `/live`, `/ready`, `/config`, `/metrics`. Small and rarely hit, so a plain NIO handler.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: any AdminState
    private var path: String?
    private var method: HTTPMethod = .GET

    init(state: any AdminState) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            method = head.method
        case .body:
            break
        case .end:
            let (status, contentType, body) = respond(to: path ?? "/")
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: contentType)
            headers.add(name: "content-length", value: String(body.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            if method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            path = nil
        }
    }

    private func respond(to path: String) -> (HTTPResponseStatus, String, String) {
        let text = "text/plain; charset=utf-8"
        switch path {
        case "/live":
            return (.ok, text, "live\n")
        case "/ready":
            return state.isReady ? (.ok, text, "ready\n") : (.serviceUnavailable, text, "not ready\n")
        case "/config":
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            guard let data = try? encoder.encode(state.configReport()) else {
                return (.internalServerError, text, "could not encode the config\n")
            }
            return (.ok, "application/json", String(decoding: data, as: UTF8.self) + "\n")
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4; charset=utf-8", state.metricsText())
        default:
            return (.notFound, text, "not found; try /live, /ready, /config or /metrics\n")
        }
    }
}
