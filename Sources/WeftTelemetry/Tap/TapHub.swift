import Synchronization
import WeftRegex

/// The taps open on this proxy. The tap filter asks ``isActive`` once per request (one
/// atomic load) and does nothing more while nobody taps.
public final class TapHub: Sendable {
    private let activeCount = Atomic<Int>(0)
    private let subscriptions = Mutex<[TapSubscription]>([])
    private let nextSubscriptionID = Atomic<UInt64>(1)
    private let nextRequestID = Atomic<UInt64>(1)

    public init() {}

    /// Whether any tap is open.
    @inline(__always)
    public var isActive: Bool { activeCount.load(ordering: .relaxed) > 0 }

    /// Taps open right now.
    public var activeTaps: Int { activeCount.load(ordering: .relaxed) }

    /// Events dropped because a tapper read too slowly, over the proxy's lifetime.
    public var droppedEvents: Int { TapSubscription.globalDropped.load(ordering: .relaxed) }

    /// Opens a tap. Its reader takes events with ``TapSubscription/nextBatch()`` until it
    /// finishes (its limit reached) or ``unsubscribe(_:)`` is called.
    ///
    /// - Parameters:
    ///   - maxRPS: requests observed per second at most.
    ///   - limit: stop after this many requests; nil for no limit.
    ///   - extractHeaders: request headers reported with each request.
    ///   - bufferSize: events held for a slow reader before new ones are dropped.
    public func subscribe(_ predicate: TapPredicate, maxRPS: Int = 100, limit: Int? = nil,
                          extractHeaders: [String] = [], bufferSize: Int = 1_000) -> TapSubscription {
        let id = nextSubscriptionID.add(1, ordering: .relaxed).oldValue
        let subscription = TapSubscription(id: id, predicate: predicate, maxRPS: maxRPS, limit: limit,
                                           extractHeaders: extractHeaders, bufferSize: bufferSize)
        subscriptions.withLock { list in
            list.append(subscription)
            activeCount.store(list.count, ordering: .relaxed)
        }
        return subscription
    }

    /// Closes a tap; when the last one closes, the per-request cost returns to one atomic load.
    public func unsubscribe(_ subscription: TapSubscription) {
        subscription.finish()
        subscriptions.withLock { list in
            list.removeAll { $0 === subscription }
            activeCount.store(list.count, ordering: .relaxed)
        }
    }

    /// The taps that want `request`, each admitting it under its rate and limit.
    public func admit(_ request: TappedRequest, scratch: MatchScratch) -> [TapSubscription] {
        let open = subscriptions.withLock { $0 }
        return open.filter { $0.admits(request, scratch: scratch) }
    }

    /// A new request id, unique within the process.
    public func makeRequestID() -> UInt64 {
        nextRequestID.add(1, ordering: .relaxed).oldValue
    }
}
