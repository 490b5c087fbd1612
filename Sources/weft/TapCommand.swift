import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import SwiftProtobuf
import Synchronization
import WeftController
import WeftProxy
import WeftTapAPI

/// `weft tap`: streams live requests, from every proxy of a resource (through the controller) or
/// straight from one proxy's tap listener (`--proxy`).
struct TapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tap",
        abstract: "Stream live requests through a proxy.",
        discussion: """
            Prints one line per request event, as it happens: `req` (request head), `rsp` \
            (response head, with time to first byte), `end` (gRPC status, duration, bytes). \
            Filters combine with AND. Stop with Ctrl-C. With RESOURCE (deploy/NAME, po/NAME, \
            svc/NAME, ns/NAME) the controller taps every proxy of it and merges the streams; \
            without, --proxy names one proxy's tap listener.
            """)

    @Argument(help: "What to tap, through the controller: deploy/NAME, po/NAME, svc/NAME or ns/NAME.")
    var resource: String?

    @Option(name: .shortAndLong, help: "The namespace of RESOURCE, --to and --from (default: any).")
    var namespace: String?

    @Option(help: "Without RESOURCE: the proxy's tap listener, host:port.")
    var proxy = "127.0.0.1:4190"

    @Option(help: "Only requests sent to this: deploy/NAME (or another kind/NAME), svc/NAME, or (with --proxy) an endpoint ip:port.")
    var to: String?

    @Option(help: "Only requests from this: a resource (deploy/NAME: its proxies' requests to RESOURCE) or a client address prefix.")
    var from: String?

    @Option(help: "Only requests whose path starts with this.")
    var path: String?

    @Option(help: "Only requests whose path matches this PCRE2 pattern (whole path).")
    var pathRegex: String?

    @Option(help: "Only requests with this HTTP method.")
    var method: String?

    @Option(help: "Only requests for this authority host (exact, without port).")
    var authority: String?

    @Option(help: "Only this listener's requests: in (to the app) or out (from the app).")
    var direction: DirectionOption?

    @Option(help: "Most requests shown per second.")
    var maxRps: UInt32 = 100

    @Option(help: "Stop after this many requests (0: never).")
    var limit: UInt64 = 0

    @Option(name: .customLong("header"), help: "A request header to show (repeatable).")
    var headers: [String] = []

    @Option(name: .shortAndLong, help: "Output: wide (default lines plus destination workload and route) or json (one object per line).")
    var output: OutputFormat?

    @OptionGroup var controller: ControllerOption

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case wide, json }
    enum DirectionOption: String, ExpressibleByArgument, CaseIterable { case `in`, out }

    func run() async throws {
        if let resource {
            try await tapThroughController(resource)
            return
        }
        guard let address = ListenAddress(parsing: proxy) else {
            throw ValidationError("--proxy '\(proxy)' is not host:port")
        }
        let request = try makeRequest()
        let format = output
        var options = CallOptions.defaults
        options.waitForReady = false
        let opened = Atomic(false)
        do {
            try await withGRPCClient(transport: .http2NIOPosix(target: address.grpcTarget, transportSecurity: .plaintext)) { client in
                let tap = Weft_Tap_V1_Tap.Client(wrapping: client)
                try await tap.observe(request, options: options) { response in
                    opened.store(true, ordering: .relaxed)
                    for try await event in response.messages {
                        try StandardOutput.writeLineOrFinish(try TapLine.render(event, format: format))
                    }
                }
            }
        } catch let error as RPCError {
            switch error.code {
            case .invalidArgument:
                throw ValidationError("the proxy rejected the tap: \(error.message)")
            case .unavailable where opened.load(ordering: .relaxed):
                throw CLIError("the proxy at \(proxy) ended the tap (\(error.message)): it stopped or restarted")
            case .unavailable:
                throw CLIError("cannot reach the tap listener at \(proxy) (\(error.message)); is weft-proxy running? Its tap address is `tap.address` in its config, 127.0.0.1:4190 by default.")
            default:
                throw CLIError("tap ended: \(error.code): \(error.message)")
            }
        }
    }

    /// Taps every proxy of `resource` through the controller's merged stream.
    private func tapThroughController(_ resource: String) async throws {
        if direction != nil {
            throw ValidationError("--direction goes with --proxy; with a RESOURCE, --to and --from say which requests")
        }
        let format = output
        var failures: [String] = []
        var events = 0
        try await controller.client.lines("/api/v1/tap", [
            ("resource", resource), ("namespace", namespace), ("to", to), ("from", from), ("path", path),
            ("path_regex", pathRegex), ("method", method), ("authority", authority),
            ("max_rps", String(maxRps)), ("limit", String(limit)),
        ] + headers.map { ("header", $0) }) { line in
            if line.hasPrefix("{\"error\"") {
                struct Failure: Decodable { var error: String }
                let message = (try? JSONDecoder().decode(Failure.self, from: Data(line.utf8)).error) ?? line
                FileHandle.standardError.write(Data("weft tap: \(message)\n".utf8))
                failures.append(message)
                return
            }
            let event = try Weft_Tap_V1_TapEvent(jsonString: line)
            events += 1
            try StandardOutput.writeLineOrFinish(try TapLine.render(event, format: format))
        }
        if events == 0 && !failures.isEmpty { throw ExitCode(1) }
    }

    func makeRequest() throws -> Weft_Tap_V1_ObserveRequest {
        var conditions: [Weft_Tap_V1_Match] = []
        if let to {
            var destination = Weft_Tap_V1_DestinationMatch()
            if let slash = to.firstIndex(of: "/") {
                let kind = to[..<slash].lowercased()
                let name = String(to[to.index(after: slash)...])
                guard !name.isEmpty else { throw ValidationError("--to '\(to)' has no name after the '/'") }
                if kind == "svc" || kind == "service" {
                    destination.service = name
                } else {
                    destination.workload = to
                }
            } else if to.contains(":") {
                destination.address = to
            } else {
                destination.service = to
            }
            conditions.append(.with { $0.destination = destination })
        }
        if let from {
            conditions.append(.with { $0.source = .with { $0.prefix = from } })
        }
        conditions += TapFanOut.requestConditions(path: path, pathRegex: pathRegex, method: method, authority: authority)
        if let direction {
            conditions.append(.with { $0.direction = direction == .in ? .inbound : .outbound })
        }
        return .with {
            $0.match = .with { $0.all = .with { $0.matches = conditions } }
            $0.maxRps = maxRps
            $0.limit = limit
            $0.extractHeaders = headers.map { $0.lowercased() }
        }
    }
}

/// Tap events as text: Linkerd-style lines, or one JSON object per line.
enum TapLine {
    static func render(_ event: Weft_Tap_V1_TapEvent, format: TapCommand.OutputFormat?) throws -> String {
        if format == .json {
            var options = JSONEncodingOptions()
            options.alwaysPrintInt64sAsNumbers = true
            return try event.jsonString(options: options)
        }
        let context = event.context
        var head = "id=\(context.id) proxy=\(context.direction == .inbound ? "in" : "out") src=\(context.source.address) dst=\(context.destination.address) tls=\(context.tls)"
        if format == .wide {
            if !context.source.workload.isEmpty { head += " src_res=\(context.source.workload)" }
            if !context.destination.workload.isEmpty { head += " dst_res=\(context.destination.workload)" }
            if !context.destination.namespace.isEmpty { head += " dst_ns=\(context.destination.namespace)" }
            if !context.route.isEmpty { head += " route=\(context.route)" }
        }
        switch event.event {
        case .requestInit(let request):
            var line = "req \(head) :method=\(request.method) :authority=\(request.authority) :path=\(request.path)"
            for header in request.headers { line += " \(header.name)=\(header.value)" }
            return line
        case .responseInit(let response):
            return "rsp \(head) :status=\(response.status) latency=\(response.latencyUs)µs"
        case .responseEnd(let end):
            var line = "end \(head)"
            if end.hasGrpcStatus { line += " grpc-status=\(grpcStatusName(end.grpcStatus))" }
            line += " duration=\(end.durationUs)µs response-length=\(end.responseBytes)B"
            if !end.error.isEmpty { line += " error=\"\(end.error)\"" }
            return line
        case .dropped(let dropped):
            return "dropped \(dropped.requests) requests and \(dropped.events) events: this tap read too slowly (traffic was not slowed)"
        case nil:
            return "unknown event"
        }
    }

    static func grpcStatusName(_ code: UInt32) -> String {
        let names = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
                     "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
                     "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"]
        return Int(code) < names.count ? names[Int(code)] : String(code)
    }
}
