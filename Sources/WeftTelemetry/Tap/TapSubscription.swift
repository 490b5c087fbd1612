import Foundation
import Synchronization
import WeftRegex

/// One open tap: its predicate, its limits and its bounded event buffer.
///
/// Traffic never waits for a tapper: events go into a buffer of fixed size. While the reader is
/// behind (the buffer full), new requests are not observed for it at all (so a stuck tapper costs
/// about what an idle one does), and events of requests already observed are dropped; both are
/// counted and reported in the stream (see ``takeDropped()``).
public final class TapSubscription: Sendable {
    public let id: UInt64
    public let predicate: TapPredicate
    public let maxRPS: Int
    public let limit: Int?
    /// Request headers reported with each request (lower-case names).
    public let extractHeaders: [String]
    /// The events, in order. Ends when the limit is reached and its requests are over, or when closed.
    public let events: AsyncStream<TapEvent>

    private let continuation: AsyncStream<TapEvent>.Continuation
    private let state = Mutex(State())
    private let bufferSize: Int
    /// Events queued and not yet taken by the reader.
    private let pending = Atomic<Int>(0)
    private let droppedEvents = Atomic<Int>(0)
    private let droppedRequests = Atomic<Int>(0)

    private struct State {
        var windowStart: UInt64 = 0
        var inWindow = 0
        var admitted = 0
        var open = 0
        var finished = false
    }

    init(id: UInt64, predicate: TapPredicate, maxRPS: Int, limit: Int?, extractHeaders: [String], bufferSize: Int) {
        self.id = id
        self.predicate = predicate
        self.maxRPS = max(1, maxRPS)
        self.limit = limit
        self.extractHeaders = extractHeaders.map { $0.lowercased() }
        self.bufferSize = max(1, bufferSize)
        (events, continuation) = AsyncStream.makeStream(of: TapEvent.self, bufferingPolicy: .bufferingOldest(max(1, bufferSize)))
    }

    /// Events and requests lost so far and not yet reported; resets the counts.
    public func takeDropped() -> (events: Int, requests: Int) {
        (droppedEvents.exchange(0, ordering: .relaxed), droppedRequests.exchange(0, ordering: .relaxed))
    }

    /// The reader took one event off the buffer (call once per event read from ``events``).
    public func delivered() {
        pending.subtract(1, ordering: .relaxed)
    }

    /// Whether this tap observes `request`: it must match, fit in this second's rate, and in the limit.
    func admits(_ request: TappedRequest, scratch: MatchScratch) -> Bool {
        guard predicate.matches(request, scratch: scratch) else { return false }
        if pending.load(ordering: .relaxed) >= bufferSize {
            droppedRequests.add(1, ordering: .relaxed)
            TapSubscription.globalDropped.add(3, ordering: .relaxed)   // its request, response and end events
            return false
        }
        let second = DispatchTime.now().uptimeNanoseconds / 1_000_000_000
        return state.withLock { state in
            guard !state.finished else { return false }
            if let limit, state.admitted >= limit { return false }
            if state.windowStart != second {
                state.windowStart = second
                state.inWindow = 0
            }
            guard state.inWindow < maxRPS else { return false }
            state.inWindow += 1
            state.admitted += 1
            state.open += 1
            return true
        }
    }

    /// Queues an event without waiting; counts it as dropped when the buffer is full.
    public func send(_ event: TapEvent) {
        switch continuation.yield(event) {
        case .enqueued:
            pending.add(1, ordering: .relaxed)
        case .dropped:
            droppedEvents.add(1, ordering: .relaxed)
            TapSubscription.globalDropped.add(1, ordering: .relaxed)
        case .terminated:
            break
        @unknown default:
            break
        }
    }

    /// One admitted request is over; the stream ends once the limit's requests are all over.
    public func requestEnded() {
        let done = state.withLock { state -> Bool in
            state.open -= 1
            guard let limit, state.admitted >= limit, state.open == 0, !state.finished else { return false }
            state.finished = true
            return true
        }
        if done { continuation.finish() }
    }

    func finish() {
        state.withLock { $0.finished = true }
        continuation.finish()
    }

    /// Events dropped by every tap, over the proxy's lifetime.
    static let globalDropped = Atomic<Int>(0)
}
