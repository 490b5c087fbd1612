import Foundation
import Testing

extension Integration {
    /// `CONNECT` on the outbound listener, for clients that only know how to use an HTTP proxy by
    /// tunnelling (curl -p, AsyncHTTPClient, grpcio with http_proxy): HTTP inside the tunnel is
    /// still proxied request by request; anything else is relayed to the target.
    @Suite struct ConnectTunnel {
        @Test func httpInsideATunnelIsProxiedPerRequestWithItsMetrics() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(
                app: upstream.address, extra: "backends: [{ name: api, endpoints: [\(upstream.address)] }]"))
            defer { proxy.stop() }
            // -p: tunnel through the proxy with CONNECT, then speak HTTP inside.
            let result = try await curl(["-p", "-x", "http://\(proxy.outbound)", "-H", "x-probe: 1", "http://api/echo", "http://api/echo"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.components(separatedBy: #""path": "/echo""#).count == 3, "\(result.stdout)")
            let metrics = try await proxy.metrics()
            #expect(metrics.contains(#"response_total{direction="outbound",namespace="default",pod="#), "\(metrics)")
            #expect(metrics.split(separator: "\n").contains { $0.contains(#"dst_service="api""#) && $0.hasPrefix("response_total") && $0.hasSuffix(" 2") },
                    "both requests inside the tunnel were seen: \(metrics)")
        }

        @Test func otherBytesAreRelayedToTheTargetOrTheBackendItNames() async throws {
            let (peer, port) = try await startPythonFixture("tcp_peer.py", ["echo"])
            _ = peer
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(
                app: "127.0.0.1:\(port)", extra: "backends: [{ name: echo, endpoints: ['127.0.0.1:\(port)'] }]"))
            defer { proxy.stop() }
            let script = Paths.fixtures.appendingPathComponent("tcp_peer.py").path
            for target in ["127.0.0.1:\(port)", "echo:7"] {
                let result = try await run(Paths.pythonExecutable(), [script, "connect", proxy.outbound, target])
                #expect(result.stdout == "HTTP/1.1 200 Connection established\nb'hello\\nEOF-SEEN\\n'\n", "\(target): \(result.stdout) \(result.stderr)")
            }
        }

        @Test func grpcioWithHTTPProxyTunnelsAndEveryCallIsCountedWithItsStatus() async throws {
            let (server, port) = try await startPythonFixture("grpc_peer.py", ["server"])
            _ = server
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(
                app: "127.0.0.1:\(port)", extra: "backends: [{ name: greeter, endpoints: ['127.0.0.1:\(port)'] }]"))
            defer { proxy.stop() }
            // grpcio reads http_proxy and opens a CONNECT tunnel; HTTP/2 inside is detected and proxied per call.
            let result = try await run("/usr/bin/env", ["http_proxy=http://\(proxy.outbound)", Paths.pythonExecutable(),
                                                        Paths.fixtures.appendingPathComponent("grpc_peer.py").path,
                                                        "calls", "greeter:50051", "OK=3,NOT_FOUND=1"])
            #expect(result.stdout.contains(#"{"OK": 3, "NOT_FOUND": 1}"#), "\(result.stdout) \(result.stderr)")
            let lines = try await proxy.metrics().split(separator: "\n").filter { $0.hasPrefix("response_total") && $0.contains(#"dst_service="greeter""#) }
            #expect(lines.contains { $0.contains(#"grpc_status_code="0""#) && $0.hasSuffix(" 3") }, "\(lines)")
            #expect(lines.contains { $0.contains(#"grpc_status_code="5""#) && $0.hasSuffix(" 1") }, "\(lines)")
        }

        @Test func connectOnTheInboundListenerIsRefused() async throws {
            let upstream = try await PythonUpstream.start()
            let proxy = try await ProxyUnderTest.start(config: ProxyUnderTest.config(app: upstream.address))
            defer { proxy.stop() }
            let answer = try rawExchange(proxy.inbound, Array("CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(answer.hasPrefix("HTTP/1.1 405"), "\(answer)")
            #expect(answer.contains("CONNECT is for the outbound listener"))
        }
    }
}
