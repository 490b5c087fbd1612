import Foundation
import Hummingbird
import NIOCore
import SwiftProtobuf
import WeftFilter
import WeftTapAPI

/// The controller's public HTTP/JSON API, used by the CLI (and the dashboard to come).
///
/// - `GET /api/v1/version`: the controller's version and each proxy's.
/// - `GET /api/v1/proxies`: discovery's state and every proxy with its config version and ACK state.
/// - `GET /api/v1/stat?resource=deploy[/NAME]&namespace=&from=&to=&window=1m`: rows of success
///   rate, requests per second, latency percentiles, TCP connections.
/// - `GET /api/v1/edges?resource=deploy&namespace=&window=1m`: workload-to-workload traffic.
/// - `GET /api/v1/tap?resource=deploy/NAME&namespace=&from=&to=&path=&path_regex=&method=&authority=&max_rps=&limit=&header=`:
///   live requests as newline-delimited JSON, one tap event per line (`{"error": …}` lines for a proxy that failed).
///
/// Errors are `{"error": "…"}` with 400 (bad request), 404 (unknown resource) or 502 (metrics source down).
public struct PublicAPI: Sendable {
    let controller: MeshController
    let metrics: any MetricsSource
    let tap: TapFanOut

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/api/v1/version") { _, _ in
            Self.json(VersionReport(controller: WeftVersion.current, proxies: controller.proxies.filter(\.connected).map {
                .init(namespace: $0.namespace, workload: $0.workload, instance: $0.instance, version: $0.proxyVersion)
            }))
        }
        router.get("/api/v1/proxies") { _, _ in
            let mesh = controller.mesh
            return Self.json(ProxiesReport(
                discovery: .init(source: mesh?.source, ready: mesh != nil, error: controller.discoveryError, warnings: controller.warnings),
                proxies: controller.proxies))
        }
        router.get("/api/v1/stat") { request, _ in
            await Self.answer {
                let parameters = request.uri.queryParameters
                let namespace = parameters.get("namespace").flatMap { $0.isEmpty ? nil : $0 }
                let resource = try ResourceRef(parsing: parameters.get("resource") ?? "deploy", namespace: namespace)
                let window = try Self.window(parameters.get("window"))
                let statRequest = StatRequest(
                    resource: resource,
                    from: try parameters.get("from").map { try ResourceRef(parsing: $0, namespace: namespace) },
                    to: try parameters.get("to").map { try ResourceRef(parsing: $0, namespace: namespace) },
                    windowSeconds: window)
                let data = try await Self.read(metrics, window)
                let rows = try StatQuery.rows(statRequest, window: data, mesh: controller.mesh, proxies: controller.proxies)
                return Self.json(StatReport(window: window, source: metrics.name, rows: rows))
            }
        }
        router.get("/api/v1/edges") { request, _ in
            await Self.answer {
                let parameters = request.uri.queryParameters
                let namespace = parameters.get("namespace").flatMap { $0.isEmpty ? nil : $0 }
                let resource = try ResourceRef(parsing: parameters.get("resource") ?? "deploy", namespace: namespace)
                let window = try Self.window(parameters.get("window"))
                let data = try await Self.read(metrics, window)
                let edges = try StatQuery.edges(kind: resource.kind, namespace: namespace, window: data)
                return Self.json(EdgesReport(window: window, source: metrics.name, edges: edges))
            }
        }
        router.get("/api/v1/tap") { request, _ in
            await Self.answer {
                let parameters = request.uri.queryParameters
                let namespace = parameters.get("namespace").flatMap { $0.isEmpty ? nil : $0 }
                guard let resourceText = parameters.get("resource") else {
                    throw StatError.badRequest("tap needs a resource: deploy/NAME, po/NAME, svc/NAME or ns/NAME")
                }
                var query = TapQuery(resource: try ResourceRef(parsing: resourceText, namespace: namespace))
                query.from = parameters.get("from")
                query.to = try parameters.get("to").map { try ResourceRef(parsing: $0, namespace: namespace) }
                query.path = parameters.get("path")
                query.pathRegex = parameters.get("path_regex")
                query.method = parameters.get("method")
                query.authority = parameters.get("authority")
                query.maxRps = parameters.get("max_rps").flatMap(UInt32.init) ?? 100
                query.limit = parameters.get("limit").flatMap(UInt64.init) ?? 0
                query.headers = parameters.getAll("header")
                let (proxies, observe) = try tap.plan(query)
                let items = tap.stream(proxies, observe)
                let options = { var options = JSONEncodingOptions(); options.alwaysPrintInt64sAsNumbers = true; return options }()
                let body = ResponseBody { writer in
                    for await item in items {
                        let line: String
                        switch item {
                        case .event(let event):
                            line = (try? event.jsonString(options: options)) ?? "{}"
                        case .proxyFailed(let proxy, let message):
                            line = String(decoding: try JSONEncoder().encode(["error": "proxy \(proxy): \(message)"]), as: UTF8.self)
                        }
                        try await writer.write(ByteBuffer(string: line + "\n"))
                    }
                    try await writer.finish(nil)
                }
                return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
            }
        }
        return router
    }

    // MARK: Helpers

    static func window(_ text: String?) throws(StatError) -> Double {
        guard let text, !text.isEmpty else { return 60 }
        guard let duration = ConfigDuration(parsing: text), duration.nanoseconds > 0 else {
            throw StatError.badRequest("window '\(text)' is not a duration like 30s, 1m or 5m")
        }
        return Double(duration.nanoseconds) / 1e9
    }

    static func read(_ metrics: any MetricsSource, _ window: Double) async throws(StatError) -> MetricsWindow {
        do {
            return try await metrics.window(window)
        } catch let error as StatError {
            throw error
        } catch {
            throw StatError.prometheus("cannot read metrics from \(metrics.name): \(error)")
        }
    }

    static func answer(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as StatError {
            let status: HTTPResponse.Status
            switch error {
            case .badRequest: status = .badRequest
            case .notFound: status = .notFound
            case .prometheus: status = .badGateway
            }
            return json(["error": error.description], status: status)
        } catch {
            return json(["error": "\(error)"], status: .internalServerError)
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// `GET /api/v1/version`.
public struct VersionReport: Codable, Sendable {
    public struct Proxy: Codable, Sendable {
        public var namespace: String
        public var workload: String
        public var instance: String
        public var version: String
    }
    public var controller: String
    public var proxies: [Proxy]
}

/// `GET /api/v1/proxies`.
public struct ProxiesReport: Codable, Sendable {
    public struct DiscoveryState: Codable, Sendable {
        public var source: String?
        /// A good state is in force.
        public var ready: Bool
        /// The last rejected update, while it is not fixed.
        public var error: String?
        public var warnings: [String]
    }
    public var discovery: DiscoveryState
    public var proxies: [ProxyStatus]
}

/// `GET /api/v1/stat`.
public struct StatReport: Codable, Sendable {
    public var window: Double
    public var source: String
    public var rows: [StatRow]
}

/// `GET /api/v1/edges`.
public struct EdgesReport: Codable, Sendable {
    public var window: Double
    public var source: String
    public var edges: [EdgeRow]
}
