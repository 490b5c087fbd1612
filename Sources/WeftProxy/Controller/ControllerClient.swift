import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import NIOCore
import WeftControllerAPI
import WeftFilter

/// The state of a proxy's link to its controller, shown on `/config`.
struct ControllerLink: Sendable {
    var connected = false
    var lastError: String?
    /// The version of the last snapshot received (applied or not).
    var lastSnapshot: String?
}

/// Keeps a proxy subscribed to its controller: announces the proxy, applies each snapshot it is
/// sent and answers with an ACK or a NACK. When the controller is unreachable or the stream breaks,
/// the proxy keeps serving its last good config and this reconnects with capped, jittered back-off.
struct ControllerClient: Sendable {
    /// Who the proxy is, as sent in the stream's first message.
    struct Announcement: Sendable {
        var identity: ProxyIdentity
        var adminAddress: String
        var tapAddress: String
        var configVersion: String
    }

    let address: ListenAddress
    let proxy: ProxyServer
    let group: any EventLoopGroup
    let logger: Logger
    var minBackoff: Duration = .milliseconds(200)
    var maxBackoff: Duration = .seconds(2)

    func run() async {
        var backoff = minBackoff
        var lastLogged: String?
        while !Task.isCancelled {
            let outcome: String
            do {
                let receivedAny = try await session()
                outcome = "the controller closed the stream"
                if receivedAny { backoff = minBackoff }
            } catch is CancellationError {
                return
            } catch let error as RPCError {
                outcome = error.message.isEmpty ? "\(error.code)" : "\(error.code): \(error.message)"
            } catch {
                outcome = "\(error)"
            }
            if Task.isCancelled { return }
            proxy.controllerLink {
                $0.connected = false
                $0.lastError = outcome
            }
            // One line per change of situation, not one per attempt.
            if lastLogged != outcome {
                logger.warning("controller \(address) unreachable (\(outcome)); serving config \(proxy.announcement.configVersion), retrying")
                lastLogged = outcome
            }
            let jittered = backoff * Double.random(in: 0.5...1.0)
            try? await Task.sleep(for: jittered)
            backoff = min(backoff * 2, maxBackoff)
        }
    }

    /// One stream, from hello to its end. Returns whether a snapshot arrived.
    private func session() async throws -> Bool {
        let transport = try HTTP2ClientTransport.Posix(target: address.grpcTarget, transportSecurity: .plaintext, eventLoopGroup: group)
        var options = CallOptions.defaults
        options.waitForReady = false
        let announcement = proxy.announcement
        let hello = Weft_Controller_V1_ProxyMessage.with {
            $0.hello = .with {
                $0.namespace = announcement.identity.namespace
                $0.workload = announcement.identity.workload?.description ?? ""
                $0.instance = announcement.identity.instance
                $0.proxyVersion = WeftVersion.current
                $0.adminAddress = announcement.adminAddress
                $0.tapAddress = announcement.tapAddress
                $0.configVersion = announcement.configVersion
            }
        }
        let (acks, ackSink) = AsyncStream.makeStream(of: Weft_Controller_V1_ProxyMessage.self)
        return try await withGRPCClient(transport: transport) { client in
            let api = Weft_Controller_V1_ConfigDiscovery.Client(wrapping: client)
            return try await api.stream(options: options, requestProducer: { writer in
                try await writer.write(hello)
                for await ack in acks { try await writer.write(ack) }
            }, onResponse: { response in
                defer { ackSink.finish() }
                var received = false
                for try await snapshot in response.messages {
                    if !received {
                        logger.info("connected to controller", metadata: ["controller": "\(address)"])
                    }
                    received = true
                    let error = proxy.apply(PushedConfig(version: snapshot.version, config: snapshot.config))
                    proxy.controllerLink {
                        $0.connected = true
                        $0.lastError = error?.description
                        $0.lastSnapshot = snapshot.version
                    }
                    ackSink.yield(.with {
                        $0.ack = .with {
                            $0.version = snapshot.version
                            $0.error = error?.description ?? ""
                        }
                    })
                }
                return received
            })
        }
    }
}
