import ArgumentParser
import Foundation
import WeftController

/// `weft diagnose`: where do failures start? The stat-edges-tap walk in one command.
struct DiagnoseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Name the edges where failures start, with the evidence.",
        discussion: """
            Walks the calls between workloads over the window (from RESOURCE, or every workload \
            of the namespace) and separates the failing edges whose callee fails by itself \
            (where failures start) from those that only pass a callee's failures on (where they \
            surface). For each origin it shows how the same callee does when others call it, \
            where the failures show further up, and a few failing requests tapped live. \
            Exits 1 when it found failures.
            """)

    @Argument(help: "Start from this workload (deploy/NAME); default: every workload.")
    var resource: String?

    @Option(name: .shortAndLong, help: "Only this namespace (default: all).")
    var namespace: String?

    @Option(name: .customShort("t"), help: "The window: 30s, 1m, 5m.")
    var window = "1m"

    @Option(help: "How long to tap each origin for failing requests (0s: do not tap).")
    var sample = "3s"

    @Option(name: .shortAndLong, help: "table (default) or json.")
    var output: StatCommand.OutputFormat = .table

    @OptionGroup var controller: ControllerOption

    func run() async throws {
        let diagnosis = try await controller.client.get(Diagnosis.self, "/api/v1/diagnose", [
            ("resource", resource), ("namespace", namespace), ("window", window), ("sample", sample),
        ])
        if output == .json {
            print(try JSONCoding.pretty(diagnosis))
        } else {
            print(Self.render(diagnosis, window: window, resource: resource))
        }
        if !diagnosis.origins.isEmpty { throw ExitCode(1) }
    }

    static func render(_ diagnosis: Diagnosis, window: String, resource: String?) -> String {
        func rate(_ edge: EdgeRow) -> String {
            "\(edge.successRate.map { Format.percent($0) } ?? "-") success (\(edge.successes)/\(edge.requests))"
        }
        func arrow(_ edge: EdgeRow) -> String {
            "\(edge.source) → \(edge.destination)" + (edge.sourceNamespace == edge.destinationNamespace ? "" : " (\(edge.sourceNamespace) → \(edge.destinationNamespace))")
        }
        guard !diagnosis.origins.isEmpty else {
            return diagnosis.edges.isEmpty
                ? "No traffic between workloads in the last \(window)\(resource.map { " from \($0)" } ?? ""): nothing to diagnose."
                : "No failures in the last \(window): \(diagnosis.edges.count) edge\(diagnosis.edges.count == 1 ? "" : "s") between workloads, all healthy."
        }
        var lines = ["Failures start at \(diagnosis.origins.count) place\(diagnosis.origins.count == 1 ? "" : "s") (last \(window)):", ""]
        for origin in diagnosis.origins {
            if let edge = origin.edge {
                lines.append("× \(arrow(edge))   \(rate(edge))   ← failures start here, in namespace \(edge.destinationNamespace)")
                let healthy = origin.otherCallers.filter { $0.successes == $0.requests }
                if origin.otherCallers.isEmpty {
                    lines.append("    \(edge.source) is the only caller of \(edge.destination)")
                } else {
                    for other in origin.otherCallers {
                        lines.append("    \(edge.destination) called by \(other.source): \(rate(other))")
                    }
                    if !healthy.isEmpty {
                        lines.append("    so \(edge.destination) fails when \(edge.source) calls it, not in general: look at how \(edge.source) calls it")
                    }
                }
                lines.append("    \(edge.destination) makes no failing call of its own")
                for surface in origin.surfacesAt {
                    lines.append("    shows up further as: \(arrow(surface))   \(rate(surface))")
                }
                if !origin.samples.isEmpty {
                    lines.append("    failing requests (weft tap deploy/\(edge.source) -n \(edge.sourceNamespace) --to deploy/\(edge.destination)):")
                }
            } else {
                lines.append("× \(origin.workload) (namespace \(origin.namespace)) fails by itself: it makes no failing call")
                for caller in origin.otherCallers {
                    lines.append("    called by \(caller.source): \(rate(caller))")
                }
                if !origin.samples.isEmpty {
                    lines.append("    failing requests (weft tap deploy/\(origin.workload) -n \(origin.namespace)):")
                }
            }
            for sample in origin.samples {
                var line = "      \(sample.method) \(sample.path)  :authority=\(sample.authority)"
                if let status = sample.status { line += "  :status=\(status)" }
                if let grpc = sample.grpcStatus { line += "  grpc-status=\(TapLine.grpcStatusName(UInt32(grpc)))" }
                lines.append(line)
            }
            lines.append("")
        }
        if !diagnosis.propagated.isEmpty {
            lines.append("Failing, but passed on from further down:")
            for edge in diagnosis.propagated {
                lines.append("  \(arrow(edge))   \(rate(edge))")
            }
        }
        return lines.joined(separator: "\n")
    }
}
