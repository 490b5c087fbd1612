import ArgumentParser
import Foundation
import WeftController

/// `weft stat`: success rate, requests per second and latency per resource, from the controller.
struct StatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat",
        abstract: "Show success rate, requests/s and latency for resources in the mesh.",
        discussion: """
            RESOURCE is a kind (deploy, po, svc, ns) or KIND/NAME, or KIND NAME. Numbers cover the \
            window (-t) and come from the proxies' metrics, scraped by the controller (or from \
            Prometheus when the controller runs with --prometheus-url). --from RES shows only \
            traffic RES sends (rows are its destinations); --to RES only traffic sent to RES (rows \
            are its callers).
            """)

    @Argument(help: "deploy, po, svc or ns, optionally KIND/NAME.")
    var resource: String

    @Argument(help: "A name, when RESOURCE is a bare kind.")
    var name: String?

    @Option(name: .shortAndLong, help: "Only this namespace (default: all).")
    var namespace: String?

    @Option(help: "Only traffic sent by this resource (KIND/NAME).")
    var from: String?

    @Option(help: "Only traffic sent to this resource (KIND/NAME).")
    var to: String?

    @Option(name: .customShort("t"), help: "The window: 30s, 1m, 5m.")
    var window = "1m"

    @Option(name: .shortAndLong, help: "table (default), wide (with request counts), or json.")
    var output: OutputFormat = .table

    @Option(help: "Read the numbers from this Prometheus (which scrapes the proxies) instead of the controller's own scrapes.")
    var prometheusURL: String?

    @OptionGroup var controller: ControllerOption

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case table, wide, json }

    func run() async throws {
        let target = name.map { "\(resource)/\($0)" } ?? resource
        let report = try await controller.client.get(StatReport.self, "/api/v1/stat", [
            ("resource", target), ("namespace", namespace), ("from", from), ("to", to), ("window", window),
            ("prometheus", prometheusURL),
        ])
        if output == .json {
            print(try JSONCoding.pretty(report.rows))
            return
        }
        guard !report.rows.isEmpty else {
            let scope = from.map { " sent by \($0)" } ?? to.map { " sent to \($0)" } ?? ""
            throw CLIError("no traffic\(scope) in the last \(window)\(namespace.map { " in namespace \($0)" } ?? "") (\(report.source)); send some requests, or widen the window with -t 5m")
        }
        var header = ["NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "TCP_CONN"]
        if namespace == nil { header.insert("NAMESPACE", at: 0) }
        if output == .wide { header.append("REQUESTS") }
        let rows = report.rows.map { row -> [String] in
            var cells = [
                row.name, row.meshed ?? "-",
                row.successRate.map { Format.percent($0) } ?? "-",
                row.requests > 0 ? Format.rps(row.rps) : "-",
                row.latencyP50Ms.map(Format.ms) ?? "-", row.latencyP95Ms.map(Format.ms) ?? "-", row.latencyP99Ms.map(Format.ms) ?? "-",
                row.tcpConnections.map(String.init) ?? "-",
            ]
            if namespace == nil { cells.insert(row.namespace, at: 0) }
            if output == .wide { cells.append("\(row.successes)/\(row.requests)") }
            return cells
        }
        print(Table.render(header, rows))
    }
}

/// `weft edges`: which workloads call which, with success rate and rate.
struct EdgesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edges",
        abstract: "Show the edges between workloads: who calls whom, and how it goes.")

    @Argument(help: "A workload kind (deploy).")
    var resource = "deploy"

    @Option(name: .shortAndLong, help: "Only edges touching this namespace (default: all).")
    var namespace: String?

    @Option(name: .customShort("t"), help: "The window: 30s, 1m, 5m.")
    var window = "1m"

    @Option(name: .shortAndLong, help: "table (default) or json.")
    var output: StatCommand.OutputFormat = .table

    @Option(help: "Read the numbers from this Prometheus instead of the controller's own scrapes.")
    var prometheusURL: String?

    @OptionGroup var controller: ControllerOption

    func run() async throws {
        let report = try await controller.client.get(EdgesReport.self, "/api/v1/edges", [
            ("resource", resource), ("namespace", namespace), ("window", window), ("prometheus", prometheusURL),
        ])
        if output == .json {
            print(try JSONCoding.pretty(report.edges))
            return
        }
        guard !report.edges.isEmpty else {
            throw CLIError("no traffic between workloads in the last \(window) (\(report.source)); send some requests, or widen the window with -t 5m")
        }
        let rows = report.edges.map { edge in
            [edge.source, edge.destination, edge.sourceNamespace, edge.destinationNamespace,
             edge.successRate.map { Format.percent($0) } ?? "-", Format.rps(edge.rps), "\(edge.successes)/\(edge.requests)"]
        }
        print(Table.render(["SRC", "DST", "SRC_NS", "DST_NS", "SUCCESS", "RPS", "REQUESTS"], rows))
    }
}

enum Format {
    static func percent(_ value: Double) -> String { String(format: "%.2f%%", value * 100) }
    static func rps(_ value: Double) -> String { String(format: "%.1frps", value) }
    static func ms(_ value: Double) -> String { value < 10 ? String(format: "%.1fms", value) : String(format: "%.0fms", value) }
}

enum JSONCoding {
    static func pretty(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
