import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import WeftController
import WeftProxy
import WeftProxyMain

/// Starting a controller, shared by `weft controller` and `weft up`.
enum ControllerSetup {
    static func options(push: String, api: String, scrapeInterval: Double, prometheusURL: String?) throws -> ControllerOptions {
        var options = ControllerOptions()
        guard let pushAddress = ListenAddress(parsing: push) else { throw ValidationError("--push-address '\(push)' is not host:port") }
        guard let apiAddress = ListenAddress(parsing: api) else { throw ValidationError("--api-address '\(api)' is not host:port") }
        guard scrapeInterval > 0 else { throw ValidationError("--scrape-interval must be positive") }
        options.pushAddress = pushAddress
        options.apiAddress = apiAddress
        options.scrapeInterval = .milliseconds(Int64(scrapeInterval * 1000))
        options.prometheusURL = prometheusURL
        return options
    }

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
