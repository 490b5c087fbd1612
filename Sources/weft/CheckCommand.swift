import ArgumentParser
import Foundation
import Logging
import WeftController
import WeftFilter

/// `weft check`: is the mesh healthy? Controller reachable, discovery valid, every proxy
/// connected and on the latest config.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the controller, its discovery state and every proxy's config.",
        discussion: "Exits 0 when every check passes, 1 otherwise.")

    @Option(name: .shortAndLong, help: "table (default) or json (the proxies and their state).")
    var output: StatCommand.OutputFormat = .table

    @OptionGroup var controller: ControllerOption

    func run() async throws {
        let client = controller.client
        let report: ProxiesReport
        do {
            report = try await client.get(ProxiesReport.self, "/api/v1/proxies")
        } catch {
            print("× controller reachable at \(client.base)\n    \(error)")
            throw ExitCode(1)
        }
        if output == .json {
            print(try JSONCoding.pretty(report))
        }
        var lines = ["√ controller reachable at \(client.base)"]
        var failed = false
        func check(_ ok: Bool, _ text: String, _ detail: String? = nil) {
            lines.append("\(ok ? "√" : "×") \(text)" + (detail.map { "\n    \($0)" } ?? ""))
            if !ok { failed = true }
        }
        let discovery = report.discovery
        if !discovery.ready {
            check(false, "discovery has a valid state", discovery.error ?? "no state yet")
        } else {
            check(discovery.error == nil, "discovery (\(discovery.source ?? "?")) is valid", discovery.error.map { "the last edit was rejected, the previous state stays in force: \($0)" })
        }
        for warning in discovery.warnings { lines.append("‼ \(warning)") }
        let proxies = report.proxies
        check(!proxies.isEmpty, "proxies connected", proxies.isEmpty ? "no proxy has connected to this controller" : nil)
        for proxy in proxies {
            let name = "\(proxy.namespace)/\(proxy.workload.isEmpty ? "-" : proxy.workload)/\(proxy.instance)"
            if !proxy.connected {
                check(false, "proxy \(name) connected", "disconnected; it keeps serving its last config (\(proxy.ackedVersion ?? "none"))")
                continue
            }
            if let nack = proxy.nack {
                check(false, "proxy \(name) on the latest config", "it rejected \(nack.version) (NACK) and stays on \(proxy.ackedVersion ?? "its bootstrap config"): \(nack.error)")
            } else if proxy.ackedVersion != proxy.latestVersion {
                check(false, "proxy \(name) on the latest config", "on \(proxy.ackedVersion ?? "none"), latest is \(proxy.latestVersion ?? "none") (not acknowledged yet)")
            } else {
                check(true, "proxy \(name) connected, on config \(proxy.latestVersion ?? "-")")
            }
            if !proxy.known { lines.append("‼ proxy \(name) is not a workload discovery knows; it gets endpoints only") }
        }
        if output != .json {
            print(lines.joined(separator: "\n"))
            print(failed ? "\nStatus check results are ×" : "\nStatus check results are √")
        }
        if failed { throw ExitCode(1) }
    }
}

/// `weft version`: the client's, the controller's and every proxy's version.
struct VersionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the client's, controller's and proxies' versions.")

    @Flag(help: "Only the client's version.")
    var client = false

    @OptionGroup var controller: ControllerOption

    func run() async throws {
        print("Client version: \(WeftVersion.current)")
        guard !client else { return }
        do {
            let report = try await controller.client.get(VersionReport.self, "/api/v1/version")
            print("Controller version: \(report.controller)")
            let versions = Dictionary(grouping: report.proxies, by: \.version)
            for (version, proxies) in versions.sorted(by: { $0.key < $1.key }) {
                print("Proxy version: \(version) (\(proxies.count) prox\(proxies.count == 1 ? "y" : "ies"))")
            }
            if report.proxies.isEmpty { print("Proxy version: unavailable (no proxy connected)") }
        } catch {
            print("Controller version: unavailable (\(error))")
        }
    }
}

/// `weft controller`: runs the control plane alone (`weft up` runs it with a mesh).
struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller",
        abstract: "Run the Weft controller: discovery from a mesh file, config push, stat and tap API.")

    @Option(help: "The mesh file (file discovery; re-read when it changes).")
    var mesh: String

    @OptionGroup var listen: ControllerListenOptions

    @Option(help: "How often each proxy's /metrics is scraped (seconds).")
    var scrapeInterval: Double = 2

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        let options = try listen.options(scrapeInterval: scrapeInterval)
        try await ControllerSetup.run(options: options, discovery: FileDiscovery(path: mesh), logLevel: logLevel)
    }
}
