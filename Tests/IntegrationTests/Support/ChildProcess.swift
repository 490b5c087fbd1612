import Foundation
import Synchronization

/// A real process started by a test, with its output captured and always cleaned up.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    private let pipe = Pipe()
    private let captured = Mutex("")
    /// Whether teardown asks nicely (SIGTERM, then SIGKILL after 5 s) or just kills.
    private let stopsGracefully: Bool

    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stopsGracefully: Bool = false) {
        self.stopsGracefully = stopsGracefully
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
    }

    func start() throws {
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            self?.captured.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var output: String { captured.withLock { $0 } }
    var isRunning: Bool { process.isRunning }

    /// Waits until the output has a match for `pattern`; returns the match's capture groups.
    func waitForOutput(_ pattern: String, timeout: Duration = .seconds(20)) async throws -> [String] {
        let regex = try NSRegularExpression(pattern: pattern)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = output
            if let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                return (0..<match.numberOfRanges).map { index in
                    Range(match.range(at: index), in: text).map { String(text[$0]) } ?? ""
                }
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        if !process.isRunning {
            // What it said before exiting may still be in the pipe: the failure should show why.
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("no output matching \(pattern) from \(process.executableURL?.lastPathComponent ?? "?"); output so far:\n\(output)")
    }

    func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits for the process to exit; nil if it is still running after `timeout`.
    func waitForExit(timeout: Duration = .seconds(20)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Stops the process: SIGTERM first when it stops gracefully, SIGKILL otherwise or if it lingers.
    func stop() {
        guard process.isRunning else { return }
        if !stopsGracefully {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return
        }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The result of a command run to completion.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a command to completion (e.g. curl), with a deadline.
func run(_ executable: String, _ arguments: [String], stdin: FileHandle? = nil, timeout: Duration = .seconds(60)) async throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = stdin ?? FileHandle.nullDevice
    let stdoutData = Mutex(Data()), stderrData = Mutex(Data())
    out.fileHandleForReading.readabilityHandler = { handle in
        let data = handle.availableData
        if data.isEmpty { handle.readabilityHandler = nil } else { stdoutData.withLock { $0.append(data) } }
    }
    err.fileHandleForReading.readabilityHandler = { handle in
        let data = handle.availableData
        if data.isEmpty { handle.readabilityHandler = nil } else { stderrData.withLock { $0.append(data) } }
    }
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(10))
    }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
        throw TestFailure("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
    }
    process.waitUntilExit()
    // Let the readability handlers drain what is left.
    try await Task.sleep(for: .milliseconds(20))
    let rest = out.fileHandleForReading.readDataToEndOfFile()
    let restErr = err.fileHandleForReading.readDataToEndOfFile()
    return CommandResult(
        status: process.terminationStatus,
        stdout: String(decoding: stdoutData.withLock { $0 } + rest, as: UTF8.self),
        stderr: String(decoding: stderrData.withLock { $0 } + restErr, as: UTF8.self))
}
