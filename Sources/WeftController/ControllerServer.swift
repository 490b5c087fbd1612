import AsyncHTTPClient
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import WeftFilter
import WeftProxy

/// How a controller runs.
public struct ControllerOptions: Sendable {
    /// The config-push gRPC API proxies connect to.
    public var pushAddress = ListenAddress(host: "127.0.0.1", port: 4200)
    /// The public HTTP/JSON API (`weft stat`, `weft tap`, `weft check`).
    public var apiAddress = ListenAddress(host: "127.0.0.1", port: 4201)
    /// How often the embedded path scrapes each proxy's `/metrics`.
    public var scrapeInterval: Duration = .seconds(2)
    /// Read stat from this Prometheus instead of the controller's own scrapes.
    public var prometheusURL: String?

    public init() {}
}

/// The control plane as a swift-service-lifecycle `Service`: discovery in, snapshots out to every
/// proxy (gRPC), metrics scraped for stat, and the public API. Stops on graceful shutdown.
public final class ControllerServer: Service, Sendable {
    public let controller: MeshController
    private let options: ControllerOptions
    private let discovery: any Discovery
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let ready: AsyncStream<Void>.Continuation
    /// Yields once both listeners are bound.
    public let listening: AsyncStream<Void>

    public init(options: ControllerOptions, discovery: any Discovery, registry: FilterRegistry,
                group: MultiThreadedEventLoopGroup, logger: Logger) {
        self.options = options
        self.discovery = discovery
        self.group = group
        self.logger = logger
        self.controller = MeshController(renderer: SnapshotRenderer(registry: registry), logger: logger)
        (listening, ready) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func run() async throws {
        // Scrapes and Prometheus queries are on loopback or a LAN: a target that does not answer
        // within 2 s is down (AHC would otherwise keep retrying the connection for 10 s).
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.timeout.connect = .seconds(2)
        let client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: httpConfiguration)
        let store = ScrapeStore()
        let metrics: any MetricsSource = options.prometheusURL.map { PrometheusSource(url: $0, client: client) } ?? store

        let push = options.pushAddress
        let transport = HTTP2ServerTransport.Posix(
            address: push.host.contains(":") ? .ipv6(host: push.host, port: push.port) : .ipv4(host: push.host, port: push.port),
            transportSecurity: .plaintext, eventLoopGroup: group)
        let grpc = GRPCServer(transport: transport, services: [ConfigPushService(controller: controller)])

        let api = PublicAPI(controller: controller, metrics: metrics, http: client, tap: TapFanOut(controller: controller, group: group))
        let apiAddress = options.apiAddress
        let (apiBound, apiBoundSink) = AsyncStream.makeStream(of: Void.self)
        let app = Application(
            router: api.router(),
            configuration: .init(address: .hostname(apiAddress.host, port: apiAddress.port), serverName: "weft-controller"),
            onServerRunning: { _ in apiBoundSink.yield(); apiBoundSink.finish() },
            eventLoopGroupProvider: .shared(group),
            logger: logger)

        do {
            try await serve(grpc: grpc, transport: transport, app: app, apiBound: apiBound, store: store, metrics: metrics, client: client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try? await client.shutdown()
    }

    private func serve(grpc: GRPCServer<HTTP2ServerTransport.Posix>, transport: HTTP2ServerTransport.Posix, app: some ApplicationProtocol,
                       apiBound: AsyncStream<Void>, store: ScrapeStore, metrics: any MetricsSource, client: HTTPClient) async throws {
        let push = options.pushAddress
        let apiAddress = options.apiAddress
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            // The API server ends by itself on graceful shutdown (after answering what is in flight).
            tasks.addTask {
                do {
                    try await app.run()
                } catch {
                    throw ControllerError.cannotListen("API on \(apiAddress)", "\(error)")
                }
            }
            // Everything else stops when shutdown begins (config streams never end by themselves),
            // and a failure of one (a port in use) stops the rest.
            tasks.addTask {
                try await cancelWhenGracefulShutdown {
                    try await withThrowingDiscardingTaskGroup { inner in
                        inner.addTask {
                            for await update in self.discovery.updates() { self.controller.apply(update) }
                        }
                        inner.addTask {
                            do {
                                // Cancelled (shutdown, or another listener failed): stop accepting at once.
                                try await withTaskCancellationHandler {
                                    try await grpc.serve()
                                } onCancel: {
                                    grpc.beginGracefulShutdown()
                                }
                            } catch where Task.isCancelled {
                            } catch {
                                throw ControllerError.cannotListen("push API on \(push)", "\(error)")
                            }
                        }
                        if self.options.prometheusURL == nil {
                            let scraper = Scraper(controller: self.controller, store: store, client: client, interval: self.options.scrapeInterval, logger: self.logger)
                            inner.addTask { await scraper.run() }
                        }
                        inner.addTask {
                            guard (try? await transport.listeningAddress) != nil else { return }
                            for await _ in apiBound { break }
                            guard !Task.isCancelled else { return }
                            self.logger.info("weft-controller ready", metadata: [
                                "push": "\(push)", "api": "\(apiAddress)", "discovery": "\(self.discovery.name)",
                                "stat": "\(metrics.name)"])
                            self.ready.yield()
                        }
                    }
                }
            }
            // The first failure stops the rest (waitForAll would wait for them instead).
            do {
                while try await tasks.next() != nil {}
            } catch {
                tasks.cancelAll()
                throw error
            }
        }
    }
}

/// The controller could not start.
public enum ControllerError: Error, CustomStringConvertible {
    case cannotListen(String, String)

    public var description: String {
        switch self {
        case .cannotListen(let what, let why):
            let inUse = why.contains("Address already in use") || why.contains("errno: 98")
            return "cannot listen for the \(what): "
                + (inUse ? "address already in use (another weft up or weft controller? --push-address and --api-address choose other ports)" : why)
        }
    }
}
