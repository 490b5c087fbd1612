import Foundation
@testable import weft

/// Paths of the package, the built proxy and the test fixtures.
enum Paths {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = packageRoot.appendingPathComponent("Tests/IntegrationTests/Fixtures")

    /// `WEFT_PROXY_BIN`, or the debug build `swift test` just made.
    static var proxyBinary: String {
        if let override = ProcessInfo.processInfo.environment["WEFT_PROXY_BIN"] { return override }
        return packageRoot.appendingPathComponent(".build/debug/weft-proxy").path
    }

    /// `WEFT_BIN`, or the debug build of the `weft` CLI.
    static var weftBinary: String {
        if let override = ProcessInfo.processInfo.environment["WEFT_BIN"] { return override }
        return packageRoot.appendingPathComponent(".build/debug/weft").path
    }

    static let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
        ?? (ProcessInfo.processInfo.environment["PYTHON"] ?? "python3")
    static let curl = "/usr/bin/curl"

    static func pythonExecutable() -> String {
        if let explicit = ProcessInfo.processInfo.environment["PYTHON"] { return explicit }
        // Prefer the python3 on PATH (it has the pip packages CI installed).
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/python3"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return python
    }
}

/// Python's http.server with the endpoints described in `Fixtures/upstream.py`.
final class PythonUpstream {
    let process: ChildProcess
    let port: Int

    private init(process: ChildProcess, port: Int) {
        self.process = process
        self.port = port
    }

    /// - Parameters:
    ///   - port: a fixed port (to restart an upstream where it was); nil lets the OS choose.
    ///   - delayMs: latency added to every answer.
    static func start(port: Int? = nil, delayMs: Int = 0) async throws -> PythonUpstream {
        var arguments = port.map { [String($0)] } ?? []
        if delayMs > 0 { arguments += ["--delay-ms", String(delayMs)] }
        let (process, port) = try await startPythonFixture("upstream.py", arguments)
        return PythonUpstream(process: process, port: port)
    }

    var address: String { "127.0.0.1:\(port)" }

    /// TCP connections the upstream has accepted so far.
    func connectionCount() async throws -> Int {
        try await connections()["connections"] as? Int ?? -1
    }

    /// TCP connections open at the upstream now, the one asking included.
    func openConnectionCount() async throws -> Int {
        try await connections()["open"] as? Int ?? -1
    }

    private func connections() async throws -> [String: Any] {
        let result = try await run(Paths.curl, ["-s", "--max-time", "5", "http://\(address)/connections"])
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
    }
}

/// A `weft-proxy` process started from a config, with the addresses it bound (ports chosen by the OS).
final class ProxyUnderTest {
    let process: ChildProcess
    let configFile: URL
    let inbound: String
    let outbound: String
    let admin: String
    /// The tap listener's address, when the config enables it.
    private(set) var tap: String?

    private init(process: ChildProcess, configFile: URL, inbound: String, outbound: String, admin: String) {
        self.process = process
        self.configFile = configFile
        self.inbound = inbound
        self.outbound = outbound
        self.admin = admin
    }

    /// A whole test config: listeners on loopback with ports chosen by the OS, the app at `app`,
    /// optional filter chains (YAML lists, written unindented) and any other top-level YAML.
    static func config(app: String, inboundFilters: String? = nil, outboundFilters: String? = nil, extra: String = "") -> String {
        func indented(_ yaml: String) -> String {
            yaml.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
        }
        var text = """
            admin: { address: 127.0.0.1:0 }
            tap: { address: 127.0.0.1:0 }
            shutdownGracePeriod: 10s
            inbound:
              address: 127.0.0.1:0
              app: \(app)

            """
        if let inboundFilters { text += "  filters:\n\(indented(inboundFilters))\n" }
        text += "outbound:\n  address: 127.0.0.1:0\n"
        if let outboundFilters { text += "  filters:\n\(indented(outboundFilters))\n" }
        return text + extra + "\n"
    }

    static func start(config: String, arguments: [String] = []) async throws -> ProxyUnderTest {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("proxy.yaml")
        try config.write(to: file, atomically: true, encoding: .utf8)
        let process = ChildProcess(Paths.proxyBinary, ["--config", file.path, "--threads", "1"] + arguments, stopsGracefully: true)
        try process.start()
        func address(_ listener: String) async throws -> String {
            try await process.waitForOutput("address=([0-9.]+:[0-9]+) listener=\(listener)")[1]
        }
        let proxy = ProxyUnderTest(process: process, configFile: file, inbound: try await address("inbound"),
                                   outbound: try await address("outbound"), admin: try await address("admin"))
        _ = try await process.waitForOutput("weft-proxy ready")
        if let match = process.output.firstMatch(of: /address=([0-9.]+:[0-9]+) listener=tap/) {
            proxy.tap = String(match.1)
        }
        return proxy
    }

    /// `/config` as JSON.
    func configReport() async throws -> [String: Any] {
        let result = try await run(Paths.curl, ["-s", "--max-time", "5", "http://\(admin)/config"])
        guard let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw TestFailure("/config is not JSON: \(result.stdout)")
        }
        return json
    }

    /// `/metrics`, the Prometheus text exposition.
    func metrics() async throws -> String {
        try await proxyMetrics(admin: admin)
    }

    /// The value of an unlabelled gauge or counter in `/metrics`.
    func metric(_ name: String) async throws -> Double? {
        try await proxyMetric(name, admin: admin)
    }

    /// Waits until `/metrics` shows `count` open taps.
    func waitForTaps(_ count: Int, timeout: Duration = .seconds(20)) async throws {
        try await waitForOpenTaps(count, admin: admin, timeout: timeout)
    }

    /// Peak resident set size (VmHWM) in KiB.
    func peakRSSKiB() throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(process.pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
            throw TestFailure("no VmHWM in /proc/\(process.pid)/status")
        }
        return kib
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(at: configFile.deletingLastPathComponent())
    }

    deinit { stop() }
}

/// `/metrics` of the proxy whose admin listener is `admin`, the Prometheus text exposition.
func proxyMetrics(admin: String) async throws -> String {
    let result = try await run(Paths.curl, ["-s", "--max-time", "5", "http://\(admin)/metrics"])
    guard result.status == 0 else { throw TestFailure("/metrics of \(admin) failed: \(result.stderr)") }
    return result.stdout
}

/// The value of an unlabelled gauge or counter in the `/metrics` of the proxy at `admin`.
func proxyMetric(_ name: String, admin: String) async throws -> Double? {
    let line = try await proxyMetrics(admin: admin).split(separator: "\n").first { $0.hasPrefix(name + " ") }
    return line.flatMap { Double($0.split(separator: " ")[1]) }
}

/// Waits until the proxy at `admin` has `count` taps open (`weft_tap_active`).
func waitForOpenTaps(_ count: Int, admin: String, timeout: Duration = .seconds(20)) async throws {
    let deadline = ContinuousClock.now + timeout
    var last: Double?
    while ContinuousClock.now < deadline {
        last = try await proxyMetric("weft_tap_active", admin: admin)
        if last == Double(count) { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TestFailure("the proxy at \(admin) never had \(count) open taps (last: \(last.map { "\($0)" } ?? "none"))")
}

/// curl, with the options every test wants (quiet, bounded in time).
func curl(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> CommandResult {
    try await run(Paths.curl, ["-sS", "--max-time", "\(Int(timeout.components.seconds))"] + arguments, timeout: timeout + .seconds(5))
}

/// Sends raw bytes on a fresh TCP connection and returns what comes back before the peer closes
/// (or `timeout`): for requests curl refuses to send. `halfClose` shuts the sending side down once
/// everything is sent, as `nc -N` does.
func rawExchange(_ address: String, _ bytes: [UInt8], halfClose: Bool = false, timeout: Duration = .seconds(10)) throws -> String {
    let parts = address.split(separator: ":")
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(parts[1])!).bigEndian
    inet_pton(AF_INET, String(parts[0]), &addr.sin_addr)
    let connected = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw TestFailure("connect to \(address) failed") }
    var tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if written <= 0 { break }
        offset += written
    }
    if halfClose { shutdown(fd, Int32(SHUT_WR)) }
    var received = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        received += buffer[0..<count]
    }
    return String(decoding: received, as: UTF8.self)
}

/// A loopback port that was free a moment ago (for peers that cannot bind port 0 and report it),
/// picked as `weft up` picks its own: below the kernel's ephemeral range, where no outgoing
/// connection (a parallel test's) can take it before the peer binds it.
func freePort() -> Int {
    (try? freeLoopbackPort()) ?? 0
}

/// The first port of the kernel's ephemeral range (`ip_local_port_range`), read here rather than
/// through `weft`'s reader: the tests check `weft up`'s picks against it.
func ephemeralPortRangeStart() -> Int? {
    let range = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
    return range?.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) }
}

/// Starts `Fixtures/<script>` with `arguments`; it prints `PORT <n>` once listening.
func startPythonFixture(_ script: String, _ arguments: [String] = []) async throws -> (ChildProcess, Int) {
    let process = ChildProcess(Paths.pythonExecutable(), ["-u", Paths.fixtures.appendingPathComponent(script).path] + arguments)
    try process.start()
    return (process, Int(try await process.waitForOutput("PORT ([0-9]+)")[1])!)
}

/// Waits until an h2c server answers on `port` (for servers that cannot report readiness).
func waitUntilServingHTTP2(port: Int) async throws {
    for _ in 0..<100 {
        if (try? await curl(["--http2-prior-knowledge", "-o", "/dev/null", "http://127.0.0.1:\(port)/"], timeout: .seconds(2)))?.status == 0 { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TestFailure("nothing answers HTTP/2 on port \(port)")
}
