import NIOConcurrencyHelpers

/// Holds the snapshot in force. Reading it is one uncontended lock per request; replacing it
/// is atomic, and requests in flight keep the snapshot they read.
public final class SnapshotStore: Sendable {
    private let box: NIOLockedValueBox<ProxySnapshot>

    public init(_ initial: ProxySnapshot) {
        box = NIOLockedValueBox(initial)
    }

    public var current: ProxySnapshot {
        box.withLockedValue { $0 }
    }

    /// Installs `snapshot`; returns the one it replaced.
    @discardableResult
    public func replace(with snapshot: ProxySnapshot) -> ProxySnapshot {
        box.withLockedValue { value in
            let old = value
            value = snapshot
            return old
        }
    }
}
