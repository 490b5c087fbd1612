import ArgumentParser
import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import WeftController
import WeftFilter
import WeftProxy

/// `weft up -f FILE`: the whole mesh on one machine.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run a whole mesh on this machine: the controller, and each workload's apps with their sidecar proxies.",
        discussion: """
            For every workload in the mesh file with a `command`, starts `replicas` instances of \
            the app, each with its own proxy. Each app gets, in its environment: PORT (where it \
            must listen, on 127.0.0.1), WEFT_OUTBOUND (its proxy's outbound address, host:port), \
            HTTP_PROXY/http_proxy (the same, as a URL: most HTTP clients then send through the \
            proxy), WEFT_NAMESPACE, WEFT_WORKLOAD, WEFT_INSTANCE, WEFT_SERVICE. An app calls \
            another service by its name: http://SERVICE/path through the proxy, or for gRPC, \
            connect to WEFT_OUTBOUND with SERVICE as the authority. Commands run in the mesh \
            file's directory. Logs go to RUN-DIR/logs, one file per app and per proxy. \
            Ctrl-C or SIGTERM stops everything.
            """)

    @Option(name: .shortAndLong, help: "The mesh file.")
    var file = "config/mesh.yaml"

    @OptionGroup var listen: ControllerListenOptions

    @Option(help: "Where proxy configs and logs go (default: a new directory under $TMPDIR).")
    var runDir: String?

    @Option(help: "How often each proxy's /metrics is scraped (seconds).")
    var scrapeInterval: Double = 1

    @Option(help: "The controller's log level.")
    var logLevel: Logger.Level = .notice

    func run() async throws {
        let mesh: MeshFile
        do {
            mesh = try MeshFile.load(path: file)
        } catch {
            throw CLIError(error.description)
        }
        guard mesh.workloads.contains(where: { $0.command != nil }) else {
            throw CLIError("\(file): no workload has a `command`, so there is nothing to run; see config/mesh.yaml")
        }
        let options = try listen.options(scrapeInterval: scrapeInterval)
        let directory = runDir ?? (NSTemporaryDirectory() + "weft-up-\(getpid())")
        let plan = try MeshPlan(mesh: mesh, runDirectory: URL(fileURLWithPath: directory).standardizedFileURL.path, controller: options.pushAddress,
                                reserving: [options.apiAddress.port])
        try plan.writeProxyConfigs()

        let logger = ControllerSetup.bootstrapLogging(logLevel)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let absoluteFile = URL(fileURLWithPath: file).standardizedFileURL.path
        let discovery = FileDiscovery(path: absoluteFile) { file in plan.endpoints(for: file) }
        let server = ControllerSetup.makeServer(options: options, discovery: discovery, logger: logger, group: group)
        let runner = MeshRunner(plan: plan, server: server, apiAddress: options.apiAddress,
                                meshDirectory: URL(fileURLWithPath: absoluteFile).deletingLastPathComponent().path)
        // Shut down in reverse: the apps and proxies first, then the controller.
        let services = ServiceGroup(configuration: .init(
            services: [.init(service: server), .init(service: runner, successTerminationBehavior: .gracefullyShutdownGroup,
                                                      failureTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        var failure: (any Error)?
        do {
            try await services.run()
        } catch {
            failure = error
        }
        await runner.stopAll()
        try? await group.shutdownGracefully()
        if let failure {
            throw CLIError("\(failure)")
        }
        print("weft up: stopped")
    }
}
