import GRPCCore
import WeftControllerAPI

/// The config-push gRPC service: one stream per proxy, a snapshot whenever its config changes,
/// an ACK or NACK back for each.
struct ConfigPushService: Weft_Controller_V1_ConfigDiscovery.SimpleServiceProtocol {
    let controller: MeshController

    func stream(request: RPCAsyncSequence<Weft_Controller_V1_ProxyMessage, any Error>,
                response: RPCWriter<Weft_Controller_V1_Snapshot>, context: ServerContext) async throws {
        var connection: Int?
        defer { if let connection { controller.disconnect(connection) } }
        try await withThrowingDiscardingTaskGroup { group in
            for try await message in request {
                switch message.message {
                case .hello(let hello):
                    guard connection == nil else {
                        throw RPCError(code: .invalidArgument, message: "a stream carries one Hello, first")
                    }
                    let (id, wakes) = controller.connect(hello)
                    connection = id
                    group.addTask { try await send(to: hello, wakes: wakes, response: response) }
                case .ack(let ack):
                    guard let connection else {
                        throw RPCError(code: .invalidArgument, message: "the first message must be a Hello")
                    }
                    controller.record(ack, from: connection)
                case nil:
                    throw RPCError(code: .invalidArgument, message: "empty message")
                }
            }
            group.cancelAll()
        }
    }

    private func send(to hello: Weft_Controller_V1_Hello, wakes: AsyncStream<Void>,
                      response: RPCWriter<Weft_Controller_V1_Snapshot>) async throws {
        var sent: String?
        for await _ in wakes {
            guard let snapshot = controller.snapshot(for: hello), snapshot.version != sent else { continue }
            try await response.write(.with {
                $0.version = snapshot.version
                $0.config = snapshot.config
            })
            sent = snapshot.version
        }
    }
}
