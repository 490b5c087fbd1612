import Foundation
import Synchronization
import WeftRegex

/// One open tap: its predicate, its limits and its bounded event buffer.
///
/// Traffic never waits for a tapper: events go into a buffer of fixed size, and when the reader
/// falls behind new events are dropped, counted, and reported in the stream as ``TapEvent/Kind/dropped(count:)``.
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
    private let dropped = Atomic<Int>(0)

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
        (events, continuation) = AsyncStream.makeStream(of: TapEvent.self, bufferingPolicy: .bufferingOldest(max(1, bufferSize)))
    }

    /// Events dropped so far and not yet reported; resets the count.
    public func takeDropped() -> Int {
        dropped.exchange(0, ordering: .relaxed)
    }

    /// Whether this tap observes `request`: it must match, fit in this second's rate, and in the limit.
    func admits(_ request: TappedRequest, scratch: MatchScratch) -> Bool {
        guard predicate.matches(request, scratch: scratch) else { return false }
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
        if case .dropped = continuation.yield(event) {
            dropped.add(1, ordering: .relaxed)
            TapSubscription.globalDropped.add(1, ordering: .relaxed)
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
