import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import NIOCore
import NIOPosix
import Testing
import WeftFilter
import WeftFilters
@testable import WeftProxy
import WeftTelemetry

/// Holds every request's context weakly. A context belongs to its exchange, so once the requests
/// are over and nothing holds their exchanges, every reference here must read nil.
final class ContextWatcher: @unchecked Sendable {
    private struct WeakContext {
        weak var context: RequestContext?
    }

    private let lock = NSLock()
    private var watched: [WeakContext] = []

    func watch(_ context: RequestContext) {
        lock.withLock { watched.append(WeakContext(context: context)) }
    }

    var seen: Int { lock.withLock { watched.count } }
    var alive: Int { lock.withLock { watched.count { $0.context != nil } } }

    func reset() { lock.withLock { watched.removeAll() } }
}

struct WatchContextsFilter: HTTPFilter {
    let watcher: ContextWatcher

    func onRequestHead(_ request: inout HTTPRequest, context: RequestContext) -> FilterAction {
        watcher.watch(context)
        return .continue
    }
}

struct WatchContextsFactory: FilterFactory {
    struct Config: Decodable {}
    let name = "watch-contexts"
    let watcher: ContextWatcher

    func makeFilter(config: Config, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter {
        WatchContextsFilter(watcher: watcher)
    }
}

/// The proxy keeps no weak references on the request path (see `Exchange`): exchanges, streams,
/// connections and their handlers hold each other strongly and break the cycles when a request
/// ends. These tests prove they do, however a request ends: every exchange is released once its
/// request is over, over HTTP/1.1 and HTTP/2, answered, timed out, refused, retried, reset or
/// abandoned by its client.
@Suite(.serialized) struct ExchangeLifetimeTests {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("IntegrationTests/Fixtures")

    /// Starts a Python fixture that prints `PORT <n>` once it listens. Its stderr goes nowhere: a
    /// fixture left running must not hold the test runner's output open.
    func startFixture(_ script: String, _ arguments: [String] = []) throws -> (Process, Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", fixtures.appendingPathComponent(script).path] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var seen = ""
        while !seen.contains("\n") {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        guard let line = seen.split(separator: "\n").first(where: { $0.hasPrefix("PORT ") }), let port = Int(line.dropFirst(5)) else {
            stop(process)
            throw FixtureError(message: "\(script) printed no port: \(seen)")
        }
        return (process, port)
    }

    struct FixtureError: Error { let message: String }

    /// SIGKILL: a process started after an in-process proxy (ServiceLifecycle ignores SIGTERM to
    /// watch it) inherits SIGTERM ignored.
    func stop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// The status of each response, one per line ("000": none), `curl` running one request at a time.
    func curl(_ options: [String], _ urls: [String]) throws -> String {
        try standardOutput(of: "/usr/bin/curl", ["-s", "-w", "%{http_code}\n"] + options + urls.flatMap { ["-o", "/dev/null", $0] })
    }

    /// The status of each response, one per line, `nghttp` sending every request on one HTTP/2
    /// connection at once.
    func nghttp(_ options: [String], _ urls: [String]) throws -> String {
        let verbose = try standardOutput(of: "/usr/bin/nghttp", ["-nv"] + options + urls)
        return verbose.split(separator: "\n").compactMap { line in
            line.range(of: ":status: ").map { String(line[$0.upperBound...]) + "\n" }
        }.joined()
    }

    /// Sends `request` on a new connection, waits, then resets the connection (SO_LINGER 0): the
    /// proxy's read fails, rather than seeing a half-close it would still answer.
    func sendThenReset(_ request: String, port: Int, after wait: Duration) throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw FixtureError(message: "no socket") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw FixtureError(message: "connect to the proxy failed") }
        _ = request.withCString { send(socket, $0, strlen($0), 0) }
        Thread.sleep(forTimeInterval: Double(wait.components.attoseconds) / 1e18 + Double(wait.components.seconds))
        var reset = linger(l_onoff: 1, l_linger: 0)
        setsockopt(socket, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
    }

    /// Waits for the exchanges of finished requests to be released (the last steps of a request,
    /// a client's close, happen on the proxy's event loop after curl has returned).
    func waitUntilReleased(_ watcher: ContextWatcher) async throws -> Int {
        for _ in 0..<100 where watcher.alive > 0 {
            try await Task.sleep(for: .milliseconds(20))
        }
        return watcher.alive
    }

    @Test func everyExchangeIsReleasedOnceItsRequestIsOverHoweverItEnded() async throws {
        let (upstream, upstreamPort) = try startFixture("upstream.py")
        let (h2Upstream, h2Port) = try startFixture("h2_upstream.py", ["echo-frames"])
        let (h2Resetting, h2ResetPort) = try startFixture("h2_upstream.py", ["reset"])
        let (h2Slow, h2SlowPort) = try startFixture("h2_upstream.py", ["stalled-reader", "5"])
        defer { for process in [upstream, h2Upstream, h2Resetting, h2Slow] { stop(process) } }

        let inbound = try freeLocalPort(), admin = try freeLocalPort(), outbound = try freeLocalPort(), tap = try freeLocalPort()
        let watcher = ContextWatcher()
        let telemetry = Telemetry()
        var registry = FilterRegistry.builtin(telemetry: telemetry)
        registry.register(WatchContextsFactory(watcher: watcher))
        let server = try await InProcessProxy.start(config: """
            admin: { address: 127.0.0.1:\(admin) }
            tap: { address: 127.0.0.1:\(tap) }
            inbound:
              address: 127.0.0.1:\(inbound)
              app: 127.0.0.1:\(upstreamPort)
              filters:
                - name: protocol-detect
                - name: watch-contexts
                - name: route
                  config:
                    routes:
                      - { name: timed, match: { headers: [{ name: x-case, value: timed }] }, backend: app, timeout: 200ms }
                      - { name: refused, match: { headers: [{ name: x-case, value: refused }] }, backend: nowhere }
                      - { name: retried, match: { headers: [{ name: x-case, value: retried }] }, backend: app }
                      - { name: h2, match: { headers: [{ name: x-case, value: h2 }] }, backend: h2 }
                      - { name: h2-reset, match: { headers: [{ name: x-case, value: h2-reset }] }, backend: h2-reset }
                      - { name: h2-slow, match: { headers: [{ name: x-case, value: h2-slow }] }, backend: h2-slow }
                - name: retry
                  config:
                    policies: [{ routes: [retried], maxRetries: 2, on: [5xx] }]
                - name: metrics
                - name: tap
            outbound: { address: 127.0.0.1:\(outbound) }
            backends:
              - { name: nowhere, endpoints: [127.0.0.1:9] }
              - { name: h2, endpoints: [127.0.0.1:\(h2Port)] }
              - { name: h2-reset, endpoints: [127.0.0.1:\(h2ResetPort)] }
              - { name: h2-slow, endpoints: [127.0.0.1:\(h2SlowPort)] }
            """, registry: registry, telemetry: telemetry)

        let proxy = "http://127.0.0.1:\(inbound)"
        let cases: [(name: String, requests: Int, run: () throws -> String, expected: String)] = [
            // Three requests on one keep-alive connection, answered by the upstream.
            ("HTTP/1.1 answered", 3, { try curl([], ["\(proxy)/echo", "\(proxy)/echo", "\(proxy)/echo"]) }, "200\n200\n200\n"),
            ("HTTP/1.1 route timeout", 1, { try curl(["-H", "x-case: timed"], ["\(proxy)/hang"]) }, "504\n"),
            ("HTTP/1.1 connect refused", 1, { try curl(["-H", "x-case: refused"], ["\(proxy)/echo"]) }, "502\n"),
            // 503, then twice more, each drained off its pooled connection before the next try.
            ("HTTP/1.1 retried", 1, { try curl(["-H", "x-case: retried"], ["\(proxy)/status/503"]) }, "503\n"),
            // The client half-closes (curl gives up) before the answer, which is still written.
            ("HTTP/1.1 answered after the client left", 1, { try curl(["--max-time", "0.2"], ["\(proxy)/slow?ms=500"]) }, "000\n"),
            // The client resets the connection while the upstream holds the request: aborted.
            ("HTTP/1.1 client reset", 1, {
                try sendThenReset("GET /hang HTTP/1.1\r\nHost: lifetime\r\n\r\n", port: inbound, after: .milliseconds(200))
                return ""
            }, ""),
            // Two streams at once on one connection.
            ("HTTP/2 answered", 2, { try nghttp(["-H", "x-case: h2"], ["\(proxy)/a", "\(proxy)/b"]) }, "200\n200\n"),
            ("HTTP/2 upstream reset", 1, { try curl(["--http2-prior-knowledge", "-H", "x-case: h2-reset"], ["\(proxy)/a"]) }, "502\n"),
            // The upstream answers only after 5 s; the client closes its connection first.
            ("HTTP/2 client gone", 1, {
                try curl(["--http2-prior-knowledge", "--max-time", "0.3", "-H", "x-case: h2-slow"], ["\(proxy)/a"])
            }, "000\n"),
        ]
        for (name, requests, run, expected) in cases {
            watcher.reset()
            let answered = try run()
            #expect(answered == expected, "\(name): the client saw \(answered)")
            #expect(watcher.seen == requests, "\(name): requests seen by the filter chain")
            let alive = try await waitUntilReleased(watcher)
            #expect(alive == 0, "\(name): \(alive) of \(watcher.seen) exchanges still alive after their requests ended")
        }

        try await server.stop()
    }
}

extension ExchangeLifetimeTests {
    /// What the pool test watches, weakly.
    final class PoolWatch: @unchecked Sendable {
        weak var pool: UpstreamPool?
        weak var http1: HTTP1UpstreamConnection?
        weak var http1Channel: (any Channel)?
        weak var http2: HTTP2UpstreamConnection?
        weak var http2Channel: (any Channel)?
        /// The connections that were made (and watched).
        var made: [String] = []

        var alive: [String] {
            [("pool", pool as AnyObject?), ("HTTP/1.1 connection", http1), ("its channel", http1Channel),
             ("HTTP/2 connection", http2), ("its channel", http2Channel)].compactMap { $0.1 == nil ? nil : $0.0 }
        }
    }

    /// Upstream connections, their channels and the pool hold each other strongly (callbacks,
    /// handlers, NIO's frame delegate): all of it is released once the connections close.
    @Test func upstreamConnectionsAndTheirPoolAreReleasedOnceTheConnectionsClose() async throws {
        let (upstream, port) = try startFixture("upstream.py")
        let (h2Upstream, h2Port) = try startFixture("h2_upstream.py", ["echo-frames"])
        defer { for process in [upstream, h2Upstream] { stop(process) } }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let metrics = Telemetry().metrics.tcp(direction: .inbound, peer: .dst, identity: ProxyIdentity(namespace: "test", workload: nil, instance: "test"))
        let watch = PoolWatch()

        try await loop.flatSubmit { () -> EventLoopFuture<Void> in
            let pool = UpstreamPool(eventLoop: loop)
            watch.pool = pool
            let settings = UpstreamConfig()
            guard case .pending(let http1) = pool.acquire(ListenAddress(host: "127.0.0.1", port: port), protocol: .http1,
                                                          settings: settings, metrics: metrics),
                  case .pending(let http2) = pool.acquire(ListenAddress(host: "127.0.0.1", port: h2Port), protocol: .http2,
                                                          settings: settings, metrics: metrics) else {
                return loop.makeFailedFuture(FixtureError(message: "a new pool had a connection ready"))
            }
            let connected = loop.makePromise(of: Void.self)
            http1.whenComplete { http1 in
                if case .success(let stream) = http1, let connection = stream as? HTTP1UpstreamConnection {
                    watch.http1 = connection
                    watch.http1Channel = connection.channel
                    watch.made.append("HTTP/1.1")
                    // Back to the pool, idle: an idle sweep is scheduled.
                    connection.finished(requestComplete: true)
                }
                http2.whenComplete { http2 in
                    if case .success(let stream) = http2, let stream = stream as? HTTP2UpstreamStream {
                        watch.http2 = stream.connection
                        watch.http2Channel = stream.connection.channel
                        watch.made.append("HTTP/2")
                        stream.cancel()  // never started
                    }
                    pool.closeAll()
                    connected.succeed()
                }
            }
            return connected.futureResult
        }.get()
        #expect(watch.made == ["HTTP/1.1", "HTTP/2"])
        for _ in 0..<100 where !watch.alive.isEmpty {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(watch.alive.isEmpty, "still alive after the connections closed: \(watch.alive)")
        try await group.shutdownGracefully()
    }
}
