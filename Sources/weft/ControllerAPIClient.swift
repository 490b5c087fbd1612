import AsyncHTTPClient
import ArgumentParser
import Foundation
import NIOCore
import WeftController

/// The controller's public API as the CLI uses it: one clear line when it cannot be reached.
struct ControllerAPIClient {
    let base: String

    init(_ base: String) {
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
    }

    /// `--controller`'s default: `$WEFT_CONTROLLER_API`, else the local controller.
    static var defaultAddress: String {
        ProcessInfo.processInfo.environment["WEFT_CONTROLLER_API"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:4201"
    }

    /// A client that reports a controller that is down at once (no reconnect attempts: a CLI
    /// call is one request, and "connection refused" is the answer the user needs).
    private static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(3)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    static let startHint = "is it running? `weft up -f config/mesh.yaml` starts a mesh with its controller; `weft controller --mesh FILE` starts one alone"

    func url(_ path: String, _ query: [(String, String?)]) -> String {
        var components = URLComponents(string: base + path)!
        let items = query.compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }
        if !items.isEmpty { components.queryItems = items }
        return components.url?.absoluteString ?? base + path
    }

    func get<Value: Decodable>(_ type: Value.Type, _ path: String, _ query: [(String, String?)] = []) async throws -> Value {
        let response = try await send(path, query, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        let data = Data(String(buffer: body).utf8)
        guard response.status == .ok else { throw Self.failure(response.status.code, data) }
        do {
            return try JSONDecoder().decode(Value.self, from: data)
        } catch {
            throw CLIError("the controller at \(base) answered something this weft cannot read (\(error)); are client and controller the same version?")
        }
    }

    /// Calls `each` with every line of a streamed answer, until it ends.
    func lines(_ path: String, _ query: [(String, String?)], each: (String) throws -> Void) async throws {
        let response = try await send(path, query, timeout: .hours(24 * 365))
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 1 << 20)
            throw Self.failure(response.status.code, Data(String(buffer: body).utf8))
        }
        var pending = ""
        for try await chunk in response.body {
            pending += String(buffer: chunk)
            while let newline = pending.firstIndex(of: "\n") {
                let line = String(pending[..<newline])
                pending = String(pending[pending.index(after: newline)...])
                if !line.isEmpty { try each(line) }
            }
        }
    }

    private func send(_ path: String, _ query: [(String, String?)], timeout: TimeAmount) async throws -> HTTPClientResponse {
        do {
            return try await Self.http.execute(HTTPClientRequest(url: url(path, query)), timeout: timeout)
        } catch {
            throw CLIError("cannot reach the weft controller at \(base) (\(Self.reason(error))); \(Self.startHint)")
        }
    }

    private static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("connectTimeout") { return "connect timeout" }
        return text
    }

    private static func failure(_ status: UInt, _ body: Data) -> CLIError {
        struct Message: Decodable { var error: String }
        if let message = try? JSONDecoder().decode(Message.self, from: body) { return CLIError(message.error) }
        return CLIError("the controller answered HTTP \(status): \(String(decoding: body.prefix(300), as: UTF8.self))")
    }
}

/// An error for the user: printed as `Error: …`, exit code 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// kubectl-style columns: left-aligned, three spaces apart.
enum Table {
    static func render(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index] + 3, withPad: " ", startingAt: 0)
            }.joined()
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

/// Options every command that talks to the controller takes.
struct ControllerOption: ParsableArguments {
    @Option(name: .customLong("controller"), help: "The controller's API (default: $WEFT_CONTROLLER_API or http://127.0.0.1:4201).")
    var address: String = ControllerAPIClient.defaultAddress

    var client: ControllerAPIClient { ControllerAPIClient(address.contains("://") ? address : "http://" + address) }
}
