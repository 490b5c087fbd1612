import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import WeftFilter
import WeftProxy
import WeftTelemetry

/// `weft-proxy` (and `weft proxy`): runs one sidecar proxy from a config file.
public struct ProxyCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run a Weft sidecar proxy.",
        discussion: """
            Without --config every default applies: inbound 127.0.0.1:4143 → app 127.0.0.1:8080, \
            outbound 127.0.0.1:4140, admin 127.0.0.1:4191. SIGHUP (or saving the file) reloads the \
            config; SIGTERM drains requests in flight and exits.
            """)

    @Option(name: .shortAndLong, help: "The proxy's YAML config file.")
    var config: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Event loop threads (default: one per core).")
    var threads: Int = System.coreCount

    @Flag(help: "Validate the config and exit: 0 if valid, 1 with the error otherwise.")
    var check = false

    @Flag(help: "Reload on SIGHUP only; do not watch the config file.")
    var noWatch = false

    public init() {}

    public func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .trace
            return handler
        }
        var logger = Logger(label: "weft-proxy")
        logger.logLevel = logLevel

        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        let telemetry = Telemetry()
        let server = ProxyServer(configPath: config, registry: CompiledFilters.registry(telemetry: telemetry),
                                 telemetry: telemetry, logger: logger, group: group,
                                 watchInterval: noWatch ? nil : .seconds(1))
        if check {
            do {
                let snapshot = try server.check()
                print("config ok: version \(snapshot.version)")
                try? await group.shutdownGracefully()
                return
            } catch {
                try? await group.shutdownGracefully()
                throw ValidationError(error.description)
            }
        }
        let services = ServiceGroup(configuration: .init(
            services: [.init(service: server)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await services.run()
        } catch let error as ConfigError {
            try? await group.shutdownGracefully()
            logger.critical("cannot start: \(error.description)")
            throw ExitCode(1)
        } catch {
            try? await group.shutdownGracefully()
            logger.critical("stopped: \(error)")
            throw ExitCode(1)
        }
        try? await group.shutdownGracefully()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
