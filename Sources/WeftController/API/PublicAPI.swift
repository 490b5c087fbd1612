import AsyncHTTPClient
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
/// - `GET /api/v1/stat?resource=deploy[/NAME]&namespace=&from=&to=&window=1m[&prometheus=URL]`: rows of success
///   rate, requests per second, latency percentiles, TCP connections.
/// - `GET /api/v1/edges?resource=deploy&namespace=&window=1m`: workload-to-workload traffic.
/// - `GET /api/v1/tap?resource=deploy/NAME&namespace=&from=&to=&path=&path_regex=&method=&authority=&max_rps=&limit=&header=`:
///   live requests as newline-delimited JSON, one tap event per line (`{"error": …}` lines for a proxy that failed),
///   and a blank line each second (readers skip it).
///
/// Errors are `{"error": "…"}` with 400 (bad request), 404 (unknown resource) or 502 (metrics source down).
public struct PublicAPI: Sendable {
    let controller: MeshController
    let metrics: any MetricsSource
    /// For `prometheus=URL` on a query: that Prometheus instead of the controller's default source.
    let http: HTTPClient
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
                let (namespace, resource, window) = try Self.scope(parameters)
                let statRequest = StatRequest(
                    resource: resource,
                    from: try parameters.get("from").map { try ResourceRef(parsing: $0, namespace: namespace) },
                    to: try parameters.get("to").map { try ResourceRef(parsing: $0, namespace: namespace) },
                    windowSeconds: window)
                let source = self.source(parameters)
                let data = try await Self.read(source, window)
                let rows = try StatQuery.rows(statRequest, window: data, mesh: controller.mesh, proxies: controller.proxies)
                return Self.json(StatReport(window: window, seconds: data.seconds, source: source.name, rows: rows))
            }
        }
        router.get("/api/v1/edges") { request, _ in
            await Self.answer {
                let parameters = request.uri.queryParameters
                let (namespace, resource, window) = try Self.scope(parameters)
                let source = self.source(parameters)
                let data = try await Self.read(source, window)
                let edges = try StatQuery.edges(kind: resource.kind, namespace: namespace, window: data)
                return Self.json(EdgesReport(window: window, source: source.name, edges: edges))
            }
        }
        router.get("/api/v1/diagnose") { request, _ in
            await Self.answer {
                let parameters = request.uri.queryParameters
                let namespace = parameters.get("namespace").flatMap { $0.isEmpty ? nil : $0 }
                let resource = try parameters.get("resource").map { try ResourceRef(parsing: $0, namespace: namespace) }
                let kind: ResourceKind
                switch resource?.kind {
                case .workload(let name): kind = .workload(name)
                case nil: kind = .workload("deployment")
                default: throw StatError.badRequest("diagnose walks workloads: give deploy/NAME (or another workload kind), or nothing")
                }
                let window = try Self.window(parameters.get("window"))
                let sampleText = parameters.get("sample") ?? "3s"
                guard let sampleDuration = ConfigDuration(parsing: sampleText), sampleDuration.nanoseconds >= 0 else {
                    throw StatError.badRequest("sample '\(sampleText)' is not a duration like 0s, 3s or 10s")
                }
                let sample = Double(sampleDuration.nanoseconds) / 1e9
                let data = try await Self.read(self.source(parameters), window)
                let edges = try StatQuery.edges(kind: kind, namespace: nil, window: data)
                let rows = try StatQuery.rows(StatRequest(resource: ResourceRef(kind: kind, name: nil, namespace: nil), windowSeconds: window),
                                              window: data, mesh: controller.mesh, proxies: controller.proxies)
                var diagnosis = Diagnosis.analyze(edges: edges, workloads: rows, scope: (namespace, resource?.name), window: window)
                diagnosis.origins = await Self.sampleFailures(diagnosis.origins, kind: kind, tap: tap, for: sample)
                return Self.json(diagnosis)
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
                // A client that has gone (Ctrl-C, `| head`, killed) is only found by writing to it: the
                // connection allows half-closure, so its FIN alone closes nothing. A blank line every
                // second finds it within two, and with it goes every proxy's tap.
                let items = tap.stream(proxies, observe, heartbeat: .seconds(1))
                let options = { var options = JSONEncodingOptions(); options.alwaysPrintInt64sAsNumbers = true; return options }()
                let body = ResponseBody { writer in
                    for await item in items {
                        let line: String
                        switch item {
                        case .event(let event):
                            line = (try? event.jsonString(options: options)) ?? "{}"
                        case .proxyFailed(let proxy, let message):
                            line = String(decoding: try JSONEncoder().encode(["error": "proxy \(proxy): \(message)"]), as: UTF8.self)
                        case .heartbeat:
                            line = ""
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

    /// The metrics a query reads: `prometheus=URL` when given, else the controller's default.
    func source(_ parameters: Parameters) -> any MetricsSource {
        guard let url = parameters.get("prometheus"), !url.isEmpty else { return metrics }
        return PrometheusSource(url: url, client: http)
    }

    /// `namespace` (empty: all), `resource` (default `deploy`) and `window` (default 1m), as stat and edges take them.
    static func scope(_ parameters: Parameters) throws(StatError) -> (namespace: String?, resource: ResourceRef, window: Double) {
        let namespace = parameters.get("namespace").flatMap { $0.isEmpty ? nil : $0 }
        return (namespace, try ResourceRef(parsing: parameters.get("resource") ?? "deploy", namespace: namespace), try window(parameters.get("window")))
    }

    /// Taps each origin for up to `seconds` (concurrently) and keeps up to three failing requests.
    static func sampleFailures(_ origins: [Diagnosis.Origin], kind: ResourceKind, tap: TapFanOut, for seconds: Double) async -> [Diagnosis.Origin] {
        guard seconds > 0 else { return origins }
        return await withTaskGroup(of: (Int, [Diagnosis.FailedRequest]).self) { group in
            for (index, origin) in origins.enumerated() {
                var query: TapQuery
                if let edge = origin.edge {
                    query = TapQuery(resource: ResourceRef(kind: kind, name: edge.source, namespace: edge.sourceNamespace))
                    query.to = ResourceRef(kind: kind, name: edge.destination, namespace: edge.destinationNamespace)
                } else {
                    query = TapQuery(resource: ResourceRef(kind: kind, name: origin.workload, namespace: origin.namespace))
                }
                query.maxRps = 1000
                guard let (proxies, request) = try? tap.plan(query) else { continue }
                let inboundOnly = origin.edge == nil
                group.addTask {
                    let events = tap.stream(proxies, request)
                    return (index, await collectFailures(events, inboundOnly: inboundOnly, within: seconds))
                }
            }
            var sampled = origins
            for await (index, failures) in group { sampled[index].samples = failures }
            return sampled
        }
    }

    private static func collectFailures(_ events: AsyncStream<TapFanOut.Item>, inboundOnly: Bool, within seconds: Double) async -> [Diagnosis.FailedRequest] {
        await withTaskGroup(of: [Diagnosis.FailedRequest]?.self) { group in
            group.addTask {
                var requests: [UInt64: Diagnosis.FailedRequest] = [:]
                var failures: [Diagnosis.FailedRequest] = []
                for await item in events {
                    guard case .event(let event) = item else { continue }
                    if inboundOnly && event.context.direction != .inbound { continue }
                    let id = event.context.id
                    switch event.event {
                    case .requestInit(let head):
                        requests[id] = .init(method: head.method, authority: head.authority, path: head.path, status: nil, grpcStatus: nil)
                    case .responseInit(let head):
                        requests[id]?.status = Int(head.status)
                    case .responseEnd(let end):
                        guard var request = requests.removeValue(forKey: id) else { continue }
                        if end.hasGrpcStatus { request.grpcStatus = Int(end.grpcStatus) }
                        let failed = (request.status ?? 0) >= 500 || (request.grpcStatus ?? 0) != 0 || !end.error.isEmpty
                        if failed { failures.append(request) }
                        if failures.count >= 3 { return failures }
                    default:
                        continue
                    }
                }
                return failures
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            if let first { return first }
            // Time is up: whatever the tap found so far is in the other task, which now ends.
            for await result in group { if let result { return result } }
            return []
        }
    }

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
    /// The window asked for, in seconds.
    public var window: Double
    /// The part of it the proxies were up for: rates are requests divided by this.
    public var seconds: Double
    public var source: String
    public var rows: [StatRow]
}

/// `GET /api/v1/edges`.
public struct EdgesReport: Codable, Sendable {
    public var window: Double
    public var source: String
    public var edges: [EdgeRow]
}
