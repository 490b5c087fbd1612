import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import WeftController
import WeftProxy
import WeftProxyMain

/// Where a controller listens and where stat comes from: `weft controller` and `weft up`.
struct ControllerListenOptions: ParsableArguments {
    @Option(help: "Where proxies connect for config (gRPC).")
    var pushAddress = "127.0.0.1:4200"

    @Option(help: "The controller's public API (weft stat, tap, check).")
    var apiAddress = "127.0.0.1:4201"

    @Option(help: "Read stat from this Prometheus instead of scraping the proxies.")
    var prometheusURL: String?

    func options(scrapeInterval: Double) throws -> ControllerOptions {
        var options = ControllerOptions()
        guard let push = ListenAddress(parsing: pushAddress) else { throw ValidationError("--push-address '\(pushAddress)' is not host:port") }
        guard let api = ListenAddress(parsing: apiAddress) else { throw ValidationError("--api-address '\(apiAddress)' is not host:port") }
        guard scrapeInterval > 0 else { throw ValidationError("--scrape-interval must be positive") }
        options.pushAddress = push
        options.apiAddress = api
        options.scrapeInterval = .milliseconds(Int64(scrapeInterval * 1000))
        options.prometheusURL = prometheusURL
        return options
    }
}

/// Starting a controller, shared by `weft controller` and `weft up`.
enum ControllerSetup {
    static func bootstrapLogging(_ level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "weft-controller")
    }

    static func makeServer(options: ControllerOptions, discovery: any Discovery, logger: Logger,
                           group: MultiThreadedEventLoopGroup) -> ControllerServer {
        ControllerServer(options: options, discovery: discovery, registry: CompiledFilters.registry(), group: group, logger: logger)
    }

    /// Runs a controller until SIGTERM or SIGINT.
    static func run(options: ControllerOptions, discovery: any Discovery, logLevel: Logger.Level) async throws {
        let logger = bootstrapLogging(logLevel)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = makeServer(options: options, discovery: discovery, logger: logger, group: group)
        let services = ServiceGroup(configuration: .init(services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await services.run()
        } catch {
            logger.critical("stopped: \(error)")
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        try? await group.shutdownGracefully()
    }
}
