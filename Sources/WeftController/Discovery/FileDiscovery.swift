import Foundation
import WeftProxy

/// Discovery from a mesh file, re-read whenever it changes (checked every `interval`). A bad edit
/// is reported with file, line and field, and the controller keeps the last good state.
public struct FileDiscovery: Discovery {
    public let path: String
    /// Endpoints that replace the file's, by workload index (`weft up` fills in the proxies it runs).
    public let endpoints: @Sendable (MeshFile) -> [Int: [ListenAddress]]
    public let interval: Duration

    public init(path: String, interval: Duration = .milliseconds(250),
                endpoints: @escaping @Sendable (MeshFile) -> [Int: [ListenAddress]] = { _ in [:] }) {
        self.path = path
        self.interval = interval
        self.endpoints = endpoints
    }

    public var name: String { "file \(path)" }

    public func updates() -> AsyncStream<Result<MeshState, DiscoveryError>> {
        AsyncStream { continuation in
            let task = Task {
                var lastText: String?
                var first = true
                while !Task.isCancelled {
                    let text = try? String(contentsOfFile: path, encoding: .utf8)
                    if first || text != lastText {
                        first = false
                        lastText = text
                        let parsed = Result { () throws(DiscoveryError) in
                            try MeshFile.parse(text ?? "", path: path, readable: text != nil)
                        }
                        continuation.yield(parsed.map { $0.state(endpoints: endpoints($0)) })
                    }
                    try? await Task.sleep(for: interval)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
