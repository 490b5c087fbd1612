import Foundation
import Testing

/// A gRPC server from Python's grpcio.
final class GRPCServer {
    let process: ChildProcess
    let port: Int

    private init(process: ChildProcess, port: Int) {
        self.process = process
        self.port = port
    }

    static func start() async throws -> GRPCServer {
        let (process, port) = try await startPythonFixture("grpc_peer.py", ["server"])
        return GRPCServer(process: process, port: port)
    }

    /// Runs a grpcio client scenario through `target`; its one-line JSON result.
    static func call(_ target: String, _ scenario: String) async throws -> [String: Any] {
        let result = try await run(Paths.pythonExecutable(), [Paths.fixtures.appendingPathComponent("grpc_peer.py").path, "client", target, scenario],
                                   timeout: .seconds(120))
        guard let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw TestFailure("grpc client printed no result: \(result.stdout) \(result.stderr)")
        }
        return json
    }
}

/// nghttpd, the nghttp2 project's HTTP/2 server, serving a folder over h2c.
final class NGHTTPServer {
    let process: ChildProcess
    let port: Int
    let root: URL

    private init(process: ChildProcess, port: Int, root: URL) {
        self.process = process
        self.port = port
        self.root = root
    }

    static func start(files: [String: Int]) async throws -> NGHTTPServer {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("weft-h2-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for (name, size) in files {
            try Data(repeating: 0x68, count: size).write(to: root.appendingPathComponent(name))
        }
        let port = freePort()
        let process = ChildProcess("/usr/sbin/nghttpd", ["--no-tls", "-d", root.path, "-a", "127.0.0.1", String(port)])
        try process.start()
        try await waitUntilServingHTTP2(port: port)
        return NGHTTPServer(process: process, port: port, root: root)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// Established TCP connections to this server.
    func establishedConnections() async throws -> Int {
        let result = try await run("/usr/bin/ss", ["-Htn", "state", "established", "( sport = :\(port) )"])
        return result.stdout.split(separator: "\n").count
    }
}

/// nginx serving a fixed body over h2c (prior knowledge) and HTTP/1.1.
final class NginxUpstream {
    let process: ChildProcess
    let h2Port: Int
    let directory: URL

    private init(process: ChildProcess, h2Port: Int, directory: URL) {
        self.process = process
        self.h2Port = h2Port
        self.directory = directory
    }

    static func start() async throws -> NginxUpstream {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-nginx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = freePort()
        let config = """
            daemon off; master_process off; pid \(directory.path)/nginx.pid; error_log stderr error;
            events { worker_connections 1024; }
            http {
              access_log off;
              client_body_temp_path \(directory.path); proxy_temp_path \(directory.path); fastcgi_temp_path \(directory.path);
              uwsgi_temp_path \(directory.path); scgi_temp_path \(directory.path);
              server { listen 127.0.0.1:\(port) http2; location / { return 200 "hello from nginx"; } }
            }
            """
        try config.write(to: directory.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        let process = ChildProcess("/usr/sbin/nginx", ["-c", directory.appendingPathComponent("nginx.conf").path, "-p", directory.path])
        try process.start()
        try await waitUntilServingHTTP2(port: port)
        return NginxUpstream(process: process, h2Port: port, directory: directory)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

extension Integration {
    @Suite struct HTTP2 {
        @Test func concurrentStreamsToAnNginxUpstreamDoNotStall() async throws {
            // Regression: requests without a body once went upstream as HEADERS + an empty DATA frame;
            // nginx answered and reset each stream, and concurrent streams stalled until it closed the connection.
            let nginx = try await NginxUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(nginx.h2Port)"))
            for _ in 0..<2 {
                let load = try await run("/usr/bin/h2load", ["-n", "2000", "-c", "2", "-m", "50", "http://\(proxy.inbound)/"], timeout: .seconds(30))
                #expect(load.stdout.contains("2000 succeeded, 0 failed, 0 errored"), "\(load.stdout)")
            }
        }

        @Test func curlAndNghttpSpeakHTTP2AndHTTP1ThroughTheSameListener() async throws {
            let h2Server = try await NGHTTPServer.start(files: ["hello.txt": 12, "blob": 300_000])
            let h1Server = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:9"))
            let h2Target = "127.0.0.1:\(h2Server.port)"
            let h2 = try await curl(["--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code} %{size_download}",
                                     "-H", "Host: \(h2Target)", "http://\(proxy.outbound)/blob"])
            #expect(h2.stdout == "2 200 300000", "\(h2.stderr)")
            let nghttp = try await run("/usr/bin/nghttp", ["-v", "-n", "-H", ":authority: \(h2Target)", "http://\(proxy.outbound)/hello.txt"])
            #expect(nghttp.stdout.contains(":status: 200"), "\(nghttp.stdout)")
            #expect(nghttp.stdout.contains("END_STREAM"))
            // Protocol detection: HTTP/1.1 on the same listener, to an HTTP/1.1 upstream.
            let h1 = try await curl(["-o", "/dev/null", "-w", "%{http_version} %{http_code}", "-H", "Host: \(h1Server.address)", "http://\(proxy.outbound)/status/200"])
            #expect(h1.stdout == "1.1 200")
        }

        @Test func anHTTP2RequestToAnHTTP1OnlyAppSaysSoIn502() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            let result = try await curl(["--http2-prior-knowledge", "-i", "http://\(proxy.inbound)/status/200"])
            #expect(result.stdout.hasPrefix("HTTP/2 502"), "\(result.stdout)")
            #expect(result.stdout.contains("weft-proxy-error: upstream \(upstream.address) does not speak HTTP/2"))
            // The same listener still serves HTTP/1.1 to that app.
            let h1 = try await curl(["-o", "/dev/null", "-w", "%{http_code}", "http://\(proxy.inbound)/status/200"])
            #expect(h1.stdout == "200")
        }

        @Test func h2loadWithAHundredConcurrentStreamsAllSucceedOverFewUpstreamConnections() async throws {
            let server = try await NGHTTPServer.start(files: ["index.html": 64])
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            let load = try await run("/usr/bin/h2load", ["-n", "2000", "-c", "2", "-m", "50", "http://\(proxy.inbound)/index.html"], timeout: .seconds(120))
            #expect(load.stdout.contains("2000 succeeded, 0 failed, 0 errored"), "\(load.stdout)")
            #expect(load.stdout.contains("status codes: 2000 2xx"))
            // 100 streams in flight at a time, 2 client connections: the proxy multiplexes them on one.
            let upstreamConnections = try await server.establishedConnections()
            #expect(upstreamConnections >= 1 && upstreamConnections <= 2, "\(upstreamConnections) upstream connections")
        }

        @Test(arguments: [
            ("bad-preface", "GOAWAY stream=0 code=1"),  // PROTOCOL_ERROR: the first frame must be SETTINGS
            ("frame-size", "GOAWAY stream=0 code=6"),   // FRAME_SIZE_ERROR: PING is 8 bytes
        ])
        func malformedHTTP2GetsGoAwayAndTheProxyKeepsServing(_ abuse: (String, String)) async throws {
            let server = try await NGHTTPServer.start(files: ["index.html": 64])
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            let frames = try await h2Abuse(proxy.inbound, abuse.0)
            #expect(frames.stdout.contains(abuse.1), "\(frames.stdout) \(frames.stderr)")
            // RFC 9113 §5.4.1: after a GOAWAY for a connection error the endpoint closes the connection.
            #expect(frames.stdout.hasSuffix("CLOSED\n"), "\(frames.stdout)")
            let next = try await curl(["--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", "http://\(proxy.inbound)/index.html"])
            #expect(next.stdout == "200")
        }

        @Test func anIdleConnectionThatNeverOpenedAStreamIsShutDownGracefully() async throws {
            let server = try await NGHTTPServer.start(files: ["index.html": 64])
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(
                app: "127.0.0.1:\(server.port)", extra: "downstream: { idleTimeout: 1s }"))
            let frames = try await h2Abuse(proxy.inbound, "idle")
            // Graceful shutdown after the idle timeout, though the connection never opened a stream:
            // GOAWAY and a PING, then the close once the PING is acknowledged.
            let lines = frames.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains("GOAWAY stream=0 code=0") && lines.contains("PING stream=0"), "\(frames.stdout) \(frames.stderr)")
            #expect(lines.last == "CLOSED", "\(frames.stdout)")
        }

        @Test func sigtermShutsAnOpenHTTP2ConnectionDownGracefully() async throws {
            // The idle timeout (90 s by default) is far off: only the drain can end this connection
            // before the raw client's 3 s of silence.
            let server = try await NGHTTPServer.start(files: ["index.html": 64])
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            async let frames = h2Abuse(proxy.inbound, "idle")
            try await Task.sleep(for: .milliseconds(500))
            proxy.process.signal(SIGTERM)
            let lines = try await frames.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains("GOAWAY stream=0 code=0") && lines.contains("PING stream=0"), "\(lines)")
            #expect(lines.last == "CLOSED", "\(lines)")
            #expect(await proxy.process.waitForExit() == 0)
        }

        @Test func anIdleClientThatNeverAcknowledgesTheGoAwayPingIsClosedAfterTheGracePeriod() async throws {
            let server = try await NGHTTPServer.start(files: ["index.html": 64])
            let config = ProxyUnderTest.config(app: "127.0.0.1:\(server.port)", extra: "downstream: { idleTimeout: 500ms }")
                .replacingOccurrences(of: "shutdownGracePeriod: 10s", with: "shutdownGracePeriod: 1s")
            let proxy = try await ProxyUnderTest.start(config: config)
            let frames = try await h2Abuse(proxy.inbound, "idle-no-ack")
            // GOAWAY and PING at 0.5 s; no acknowledgement, so no final GOAWAY: closed at 1.5 s,
            // before the raw client's 3 s of silence.
            let lines = frames.stdout.split(separator: "\n").map(String.init)
            #expect(lines == ["SETTINGS stream=0", "SETTINGS stream=0", "GOAWAY stream=0 code=0", "PING stream=0", "CLOSED"],
                    "\(frames.stdout) \(frames.stderr)")
        }

        @Test func aConnectionIdlesOutOnlyAfterItsLastStreamEnds() async throws {
            // The idle timeout (1 s) is shorter than the answer (2 s): the connection is not idle while
            // the stream is open, so GOAWAY comes only after the answer, once the connection has been
            // idle for a second.
            let (upstream, port) = try await startPythonFixture("h2_upstream.py", ["stalled-reader", "2"])
            defer { upstream.stop() }
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(
                app: "127.0.0.1:\(port)", extra: "downstream: { idleTimeout: 1s }"))
            let frames = try await h2Abuse(proxy.inbound, "stalled-reader", "/")
            let lines = frames.stdout.split(separator: "\n").map(String.init)
            let answered = lines.firstIndex(of: "DATA stream=1"), goAway = lines.firstIndex(of: "GOAWAY stream=0 code=0")
            #expect(answered != nil && goAway != nil && answered! < goAway!, "\(frames.stdout) \(frames.stderr)")
        }

        @Test func headersOnAClosedStreamAreAStreamError() async throws {
            let server = try await NGHTTPServer.start(files: ["index.html": 64])
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            let frames = try await h2Abuse(proxy.inbound, "closed-stream")
            // A stream error on stream 1 (PROTOCOL_ERROR or STREAM_CLOSED); the connection itself stays up.
            let answered = frames.stdout.contains("RST_STREAM stream=1 code=1") || frames.stdout.contains("RST_STREAM stream=1 code=5")
            #expect(answered, "\(frames.stdout) \(frames.stderr)")
            #expect(!frames.stdout.contains("GOAWAY") && frames.stdout.hasSuffix("TIMEOUT\n"), "\(frames.stdout)")
            let next = try await curl(["--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", "http://\(proxy.inbound)/index.html"])
            #expect(next.stdout == "200")
        }

        @Test func aMalformedRequestResetsItsStreamAndTheConnectionServesOn() async throws {
            // RFC 9113 §8.1.1: a malformed request is a stream error (RST_STREAM PROTOCOL_ERROR);
            // the request after it on the same connection is answered.
            let server = try await NGHTTPServer.start(files: ["index.html": 64])
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            for kind in ["uppercase", "connection", "te", "space-in-path", "no-path", "pseudo-after-field"] {
                let frames = try await h2Abuse(proxy.inbound, "malformed", kind)
                let lines = frames.stdout.split(separator: "\n").map(String.init)
                #expect(lines.contains("RST_STREAM stream=1 code=1"), "\(kind): \(frames.stdout) \(frames.stderr)")
                #expect(!lines.contains("HEADERS stream=1") && !lines.contains { $0.hasPrefix("GOAWAY") }, "\(kind): \(frames.stdout)")
                #expect(lines.contains("HEADERS stream=3") && lines.contains("DATA stream=3"), "\(kind): \(frames.stdout)")
            }
        }

        @Test func anAnswerEndsOnItsLastFrameWithNoEmptyDataFrameAfterIt() async throws {
            let server = try await NGHTTPServer.start(files: ["index.html": 64])
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            func receivedFrames(_ arguments: [String]) async throws -> [String] {
                let result = try await run("/usr/bin/nghttp", ["-v", "-n"] + arguments + ["http://\(proxy.inbound)/index.html"])
                // "[  0.014] recv DATA frame <length=64, flags=0x01, stream_id=13>" → "DATA length=64 flags=0x01"
                return result.stdout.split(separator: "\n").compactMap { line -> String? in
                    guard let range = line.range(of: "recv "), line.contains(" frame <"), !line.contains("SETTINGS") else { return nil }
                    let frame = line[range.upperBound...]
                    let kind = frame.prefix { $0 != " " }
                    let fields = frame.split(separator: "<").last?.split(separator: ",").prefix(2).map { $0.trimmingCharacters(in: .whitespaces) } ?? []
                    return ([String(kind)] + fields).joined(separator: " ")
                }
            }
            // 64 bytes: HEADERS, then one DATA frame carrying the body and END_STREAM (0x01).
            let get = try await receivedFrames([])
            #expect(get.count == 2 && get[0].hasPrefix("HEADERS") && get[1] == "DATA length=64 flags=0x01", "\(get)")
            // No body: one HEADERS frame with END_STREAM and END_HEADERS (0x05).
            let head = try await receivedFrames(["-H", ":method: HEAD"])
            #expect(head.count == 1 && head[0].hasPrefix("HEADERS") && head[0].hasSuffix("flags=0x05"), "\(head)")
        }

        @Test func aRequestWithoutABodyGoesUpstreamAsOneHeadersFrameWithEndStream() async throws {
            // Regression: a separate empty DATA frame to end the request makes nginx answer early and
            // reset the stream. The fixture answers with the frames each request arrived in.
            let (upstream, port) = try await startPythonFixture("h2_upstream.py", ["echo-frames"])
            defer { upstream.stop() }
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            for _ in 0..<3 {
                let get = try await curl(["--http2-prior-knowledge", "--max-time", "5", "-s", "http://\(proxy.inbound)/"])
                #expect(get.stdout == "HEADERS+END_STREAM", "\(get.stdout) \(get.stderr)")
            }
            let load = try await run("/usr/bin/h2load", ["-n", "200", "-c", "2", "-m", "50", "http://\(proxy.inbound)/"], timeout: .seconds(30))
            #expect(load.stdout.contains("200 succeeded, 0 failed, 0 errored"), "\(load.stdout)")
            let post = try await curl(["--http2-prior-knowledge", "--max-time", "5", "-s", "-d", "x", "http://\(proxy.inbound)/"])
            #expect(post.stdout.hasPrefix("HEADERS DATA") && post.stdout.hasSuffix("+END_STREAM"), "\(post.stdout) \(post.stderr)")
        }

        @Test func answersCrossingResetsOfAbandonedStreamsLeaveTheUpstreamConnectionServing() async throws {
            // Regression: a client that went away with 64 requests in flight made the proxy reset 64
            // upstream streams while the server was answering them. NIO remembered 32 reset streams,
            // took the other answers for a protocol error, sent GOAWAY and kept the connection, and
            // every later request through it hung.
            let (upstream, port) = try await startPythonFixture("h2_upstream.py", ["late-answers", "64"])
            defer { upstream.stop() }
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            let abandoned = try await run("/usr/bin/h2load", ["-n", "64", "-c", "1", "-m", "64", "-T", "1", "http://\(proxy.inbound)/"],
                                          timeout: .seconds(30))
            #expect(abandoned.stdout.contains("0 succeeded"), "\(abandoned.stdout)")
            let next = try await curl(["--http2-prior-knowledge", "--max-time", "5", "-s", "-w", " %{http_code}", "http://\(proxy.inbound)/"])
            #expect(next.stdout == "connection 1 200", "\(next.stdout) \(next.stderr)")
        }

        @Test func anUpstreamConnectionErrorClosesThatConnectionAndTheNextRequestGetsANewOne() async throws {
            // The server breaks the protocol (DATA on a stream never opened): NIO answers with GOAWAY and
            // leaves closing to its user. The proxy closes it, so no request waits on it.
            let (upstream, port) = try await startPythonFixture("h2_upstream.py", ["protocol-error"])
            defer { upstream.stop() }
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            let first = try await curl(["--http2-prior-knowledge", "--max-time", "5", "-s", "-w", " %{http_code}", "http://\(proxy.inbound)/"])
            // Retried on a fresh connection (nothing of the request was lost), or answered 502; not left hanging.
            #expect(first.stdout == "connection 2 200" || first.stdout.hasSuffix(" 502"), "\(first.stdout) \(first.stderr)")
            let next = try await curl(["--http2-prior-knowledge", "--max-time", "5", "-s", "-w", " %{http_code}", "http://\(proxy.inbound)/"])
            #expect(next.stdout == "connection 2 200", "\(next.stdout) \(next.stderr)")
        }

        @Test func aStreamErrorOnAnUpstreamConnectionLeavesItsOtherStreamsServing() async throws {
            // Two requests share the upstream connection; the server answers the first with a field
            // name HTTP/2 forbids (a stream error: the proxy resets that stream) and then the second. The
            // second is answered on the same connection: one bad stream does not close the others'.
            let (upstream, port) = try await startPythonFixture("h2_upstream.py", ["bad-header-first"])
            defer { upstream.stop() }
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            async let first = curl(["--http2-prior-knowledge", "--max-time", "5", "-s", "-w", " %{http_code}", "http://\(proxy.inbound)/first"])
            try await Task.sleep(for: .milliseconds(300))
            let second = try await curl(["--http2-prior-knowledge", "--max-time", "5", "-s", "-w", " %{http_code}", "http://\(proxy.inbound)/second"])
            let firstAnswer = try await first
            #expect(firstAnswer.stdout.hasSuffix(" 502"), "\(firstAnswer.stdout)")
            // The 502 says what was wrong; a malformed answer is not a stale connection, so not resent.
            #expect(firstAnswer.stdout.contains("malformed response head (field name 'X-Bad' is not a lowercase token)"), "\(firstAnswer.stdout)")
            #expect(second.stdout == "connection 1 200", "\(second.stdout) \(second.stderr)")
        }

        @Test func anUpstreamGoingAwayIsClosedOnceItsStreamsAreDoneAndTheNextRequestGetsANewOne() async throws {
            // The server sends GOAWAY after each answer and keeps the connection open, as servers do
            // for the streams in flight: the client is to close it once it has no streams left.
            let (upstream, port) = try await startPythonFixture("h2_upstream.py", ["goaway"])
            defer { upstream.stop() }
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            let first = try await curl(["--http2-prior-knowledge", "--max-time", "5", "-s", "http://\(proxy.inbound)/"])
            #expect(first.stdout == "connection 1, 0 closed by the client", "\(first.stdout) \(first.stderr)")
            try await Task.sleep(for: .milliseconds(200))
            let second = try await curl(["--http2-prior-knowledge", "--max-time", "5", "-s", "http://\(proxy.inbound)/"])
            #expect(second.stdout == "connection 2, 1 closed by the client", "\(second.stdout) \(second.stderr)")
        }

        @Test func aStreamTheUpstreamResetsIsA502ThatSaysSo() async throws {
            let (upstream, port) = try await startPythonFixture("h2_upstream.py", ["reset"])
            defer { upstream.stop() }
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            let answer = try await curl(["--http2-prior-knowledge", "--max-time", "5", "-s", "-i", "http://\(proxy.inbound)/"])
            #expect(answer.stdout.hasPrefix("HTTP/2 502"), "\(answer.stdout) \(answer.stderr)")
            #expect(answer.stdout.contains("reset the stream") && answer.stdout.lowercased().contains("internal"), "\(answer.stdout)")
        }

        @Test func anUpstreamCutOffMidAnswerResetsTheClientStreamAndKeepsTheConnection() async throws {
            // The upstream sends a head and part of a body, then goes away: the client gets what was
            // sent (a gRPC stream's messages before a failure count), then learns the answer is
            // incomplete (RST_STREAM CANCEL on its stream), and only that stream ends. The close may
            // arrive in the same read as the DATA frame; a first cut dropped the held DATA then.
            let (upstream, frames) = try await framesOfAGetThroughTheProxy(to: "cut-off")
            defer { upstream.stop() }
            #expect(firstStreamFrames(frames) == ["HEADERS stream=1", "DATA stream=1", "RST_STREAM stream=1 code=8"],
                    "\(frames.stdout) \(frames.stderr)")
            #expect(frames.stdout.split(separator: "\n").last == "TIMEOUT" && !frames.stdout.contains("GOAWAY"), "\(frames.stdout)")
        }

        @Test func malformedTrailersFromTheUpstreamResetBothStreams() async throws {
            // Trailers with a pseudo-header are malformed (RFC 9113 §8.1): the proxy does not pass
            // them on. The answer has started, so the client's stream is reset (CANCEL) after what
            // was sent; the upstream's stream is reset with PROTOCOL_ERROR.
            let (upstream, frames) = try await framesOfAGetThroughTheProxy(to: "bad-trailers")
            defer { upstream.stop() }
            #expect(firstStreamFrames(frames) == ["HEADERS stream=1", "DATA stream=1", "RST_STREAM stream=1 code=8"],
                    "\(frames.stdout) \(frames.stderr)")
            _ = try await upstream.waitForOutput("stream 1 reset 1")
        }

        @Test func anAnswerBeforeTheRequestEndedTellsTheClientToStopSending() async throws {
            // The upstream answers after 0.3 s though the request is still open: the client gets the
            // answer, then RST_STREAM (NO_ERROR), which tells it to stop sending (RFC 9113 §8.1).
            let (upstream, port) = try await startPythonFixture("h2_upstream.py", ["stalled-reader", "0.3"])
            defer { upstream.stop() }
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            let frames = try await h2Abuse(proxy.inbound, "open-upload", "/upload")
            #expect(firstStreamFrames(frames) == ["HEADERS stream=1", "DATA stream=1", "RST_STREAM stream=1 code=0"],
                    "\(frames.stdout) \(frames.stderr)")
        }

        @Test func anUploadToAnHTTP2UpstreamThatStopsReadingIsHeldBackNotBuffered() async throws {
            // The upstream never returns flow-control window: it takes 65 535 bytes of the body, then
            // answers 3 s later. The proxy must stop reading the client meanwhile (HTTP/2 back-pressure
            // on both sides), not take the client's 128 MB into memory.
            let (upstream, port) = try await startPythonFixture("h2_upstream.py", ["stalled-reader", "3"])
            defer { upstream.stop() }
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("weft-h2-upload-\(UUID().uuidString)")
            try Data(repeating: 0x61, count: 128 << 20).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            // nghttp, not curl: curl drops a complete answer when the stream is then reset with NO_ERROR
            // while it still uploads (RFC 9113 §8.1 allows exactly that), even straight from the server.
            let upload = try await run("/usr/bin/nghttp", ["-d", file.path, "http://\(proxy.inbound)/upload"], timeout: .seconds(60))
            #expect(upload.stdout == "received 65535", "\(upload.stdout) \(upload.stderr)")
            let peakKiB = try proxy.peakRSSKiB()
            #expect(peakKiB < 64 * 1024, "peak RSS \(peakKiB) KiB while a client offered 128 MB the upstream would not take")
        }

        @Test func aClientThatGrantsNoFlowControlWindowDoesNotMakeTheProxyBuffer() async throws {
            // The client reads every byte the proxy sends but never returns window: the proxy may send
            // it 65 535 bytes of the 120 MB answer and must hold the upstream back, not read the rest
            // into memory (TCP back-pressure never starts: the socket to the client stays empty).
            let size = 120 * 1024 * 1024
            let server = try await NGHTTPServer.start(files: ["big": size])
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            let frames = try await h2Abuse(proxy.inbound, "stalled-reader", "/big")
            #expect(frames.stdout.contains("HEADERS stream=1") && frames.stdout.hasSuffix("TIMEOUT\n"), "\(frames.stdout) \(frames.stderr)")
            let peakKiB = try proxy.peakRSSKiB()
            #expect(peakKiB < 64 * 1024, "peak RSS \(peakKiB) KiB for a 120 MB response to a client that grants no window")
        }

        @Test func aSlowHTTP2ReaderDoesNotMakeTheProxyBuffer() async throws {
            let size = 120 * 1024 * 1024
            let server = try await NGHTTPServer.start(files: ["big": size])
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            let download = try await curl(["--http2-prior-knowledge", "--limit-rate", "30M", "-o", "/dev/null", "-w", "%{size_download}", "http://\(proxy.inbound)/big"],
                                          timeout: .seconds(60))
            #expect(download.stdout == String(size))
            let peakKiB = try proxy.peakRSSKiB()
            #expect(peakKiB < 64 * 1024, "peak RSS \(peakKiB) KiB for a 120 MB response read at 30 MB/s")
        }
    }

    @Suite struct GRPCThroughTheProxy {
        @Test(arguments: ["unary", "server-stream", "client-stream", "bidi"])
        func everyKindOfCallWorks(_ scenario: String) async throws {
            let server = try await GRPCServer.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            let result = try await GRPCServer.call(proxy.inbound, scenario)
            #expect(result["code"] as? String == "OK", "\(result)")
            switch scenario {
            case "unary": #expect(result["reply"] as? String == "hello weft")
            case "server-stream", "client-stream": #expect(result["bytes"] as? Int == 20 * 1024 * 1024)
            default: #expect(result["echoed"] as? Int == 100)
            }
        }

        @Test func anErrorStatusFromTheServerPassesThroughUntouched() async throws {
            let server = try await GRPCServer.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            let result = try await GRPCServer.call(proxy.inbound, "error-status")
            #expect(result["code"] as? String == "NOT_FOUND")
            #expect(result["details"] as? String == "no such emoji")
        }

        @Test func anUpstreamThatIsDownIsUnavailableToTheClient() async throws {
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:9"))
            let result = try await GRPCServer.call(proxy.inbound, "unavailable")
            #expect(result["code"] as? String == "UNAVAILABLE")
            #expect((result["details"] as? String)?.contains("connect to 127.0.0.1:9 failed: connection refused") == true, "\(result)")
        }

        @Test func aClientCancellingAStreamResetsTheUpstreamStream() async throws {
            let server = try await GRPCServer.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            let result = try await GRPCServer.call(proxy.inbound, "cancel-stream")
            #expect(result["code"] as? String == "CANCELLED", "\(result)")
            // The server stops producing a 1 GiB stream: the reset reached it through the proxy.
            let stopped = try await server.process.waitForOutput("DOWNLOAD-STOPPED after ([0-9]+) bytes", timeout: .seconds(10))
            #expect(Int(stopped[1])! < 1 << 30)
        }

        @Test func sigtermLetsAGRPCCallInFlightFinishThenExits() async throws {
            let server = try await GRPCServer.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            async let slow = GRPCServer.call(proxy.inbound, "slow")
            _ = try await server.process.waitForOutput("SLEEP-STARTED")
            proxy.process.signal(SIGTERM)
            let result = try await slow
            #expect(result["code"] as? String == "OK", "\(result)")
            #expect(result["reply"] as? String == "slept")
            #expect(await proxy.process.waitForExit() == 0)
        }

        @Test func aGRPCTimeoutExpiresInTheProxyAsDeadlineExceeded() async throws {
            let server = try await GRPCServer.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(server.port)"))
            // A client that sends grpc-timeout but does not enforce it: curl, with a framed "2000" (sleep 2 s).
            let frame = FileManager.default.temporaryDirectory.appendingPathComponent("weft-grpc-\(UUID().uuidString)")
            try Data([0, 0, 0, 0, 4] + Array("2000".utf8)).write(to: frame)
            defer { try? FileManager.default.removeItem(at: frame) }
            let started = ContinuousClock.now
            let result = try await curl(["--http2-prior-knowledge", "-i", "-H", "content-type: application/grpc", "-H", "te: trailers",
                                         "-H", "grpc-timeout: 300m", "--data-binary", "@\(frame.path)", "http://\(proxy.inbound)/weft.test.Echo/Sleep"])
            let elapsed = ContinuousClock.now - started
            #expect(result.stdout.contains("grpc-status: 4"), "\(result.stdout)")
            #expect(result.stdout.contains("grpc-message: gRPC deadline of 300ms exceeded"))
            #expect(elapsed < .milliseconds(1500), "the proxy answered after \(elapsed), not at the 300 ms deadline")
        }
    }

    @Suite struct OpaqueTCP {
        func startPeer(_ mode: String) async throws -> (ChildProcess, Int) {
            try await startPythonFixture("tcp_peer.py", [mode])
        }

        func tcpClient(_ mode: String, _ target: String) async throws -> String {
            try await run(Paths.pythonExecutable(), [Paths.fixtures.appendingPathComponent("tcp_peer.py").path, mode, target]).stdout
        }

        @Test func nonHTTPBytesAreRelayedBothWaysWithHalfClose() async throws {
            let (peer, port) = try await startPeer("echo")
            _ = peer
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            let received = try await tcpClient("halfclose", proxy.inbound)
            // The echo, then the server's answer to our half-close, which it could only send because it saw EOF.
            #expect(received.contains("hello opaque world\\n\\x00\\x01\\x02 binary too\\nEOF-SEEN\\n"), "\(received)")
        }

        @Test func aServerSpeaksFirstProtocolOnAnOpaquePortSkipsDetection() async throws {
            let (peer, port) = try await startPeer("greeter")
            _ = peer
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)", inboundFilters: """
                - name: protocol-detect
                  config: { timeout: 10s, opaquePorts: [\(port)] }
                - name: route
                """))
            let line = try await tcpClient("listen", proxy.inbound)
            #expect(line.hasPrefix("b'220 weft-test ready\\r\\n'"), "\(line)")
            let seconds = Double(line.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "99") ?? 99
            #expect(seconds < 5, "the greeting took \(seconds) s: detection was not skipped")
        }

        @Test func tlsPassesThroughUntouched() async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-tls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let cert = directory.appendingPathComponent("cert.pem").path, key = directory.appendingPathComponent("key.pem").path
            let made = try await run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                                          "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=weft-tls-test"])
            #expect(made.status == 0, "\(made.stderr)")
            let port = freePort()
            let server = ChildProcess("/usr/bin/openssl", ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", cert, "-key", key, "-rev"])
            try server.start()
            _ = try await server.waitForOutput("ACCEPT")
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
            let result = try await run(Paths.pythonExecutable(), [Paths.fixtures.appendingPathComponent("tls_client.py").path, proxy.inbound, cert])
            let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            #expect(json?["certificate_matches"] as? Bool == true, "\(result.stdout) \(result.stderr)")
            #expect(json?["reply"] as? String == "tfew olleh")
        }

        @Test func aSilentClientIsForwardedAsOpaqueWhenDetectionTimesOut() async throws {
            let (peer, port) = try await startPeer("greeter")
            _ = peer
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)", inboundFilters: """
                - name: protocol-detect
                  config: { timeout: 300ms }
                - name: route
                """))
            let line = try await tcpClient("listen", proxy.inbound)
            #expect(line.hasPrefix("b'220 weft-test ready\\r\\n'"), "\(line)")
            let seconds = Double(line.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "0") ?? 0
            #expect(seconds >= 0.3, "the greeting came after \(seconds) s, before the detection timeout")
        }
    }
}

/// Starts `h2_upstream.py` in `mode` behind a proxy and sends it a GET from the raw client; the
/// frames the client received, and the upstream (its output says what it saw; the caller stops it).
private func framesOfAGetThroughTheProxy(to mode: String) async throws -> (ChildProcess, CommandResult) {
    let (upstream, port) = try await startPythonFixture("h2_upstream.py", [mode])
    do {
        let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: "127.0.0.1:\(port)"))
        return (upstream, try await h2Abuse(proxy.inbound, "stalled-reader", "/"))
    } catch {
        upstream.stop()
        throw error
    }
}

/// What `h2_abuse.py` saw of its stream 1, and every RST_STREAM, in order ("HEADERS stream=1", …).
private func firstStreamFrames(_ frames: CommandResult) -> [String] {
    frames.stdout.split(separator: "\n").map(String.init).filter { $0.hasSuffix("stream=1") || $0.hasPrefix("RST_STREAM") }
}

/// Runs the raw HTTP/2 client `h2_abuse.py` against `target` (its usage says what each case sends);
/// it prints one line per frame it receives, then CLOSED or TIMEOUT.
private func h2Abuse(_ target: String, _ arguments: String...) async throws -> CommandResult {
    try await run(Paths.pythonExecutable(), [Paths.fixtures.appendingPathComponent("h2_abuse.py").path, target] + arguments)
}
