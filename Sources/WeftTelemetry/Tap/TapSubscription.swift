import Foundation
import Synchronization
import WeftRegex

/// One open tap: its predicate, its limits and its bounded event buffer.
///
/// Traffic never waits for a tapper: events go into a buffer of fixed size. While the reader is
/// behind (the buffer full), new requests are not observed for it at all (so a stuck tapper costs
/// about what an idle one does), and events of requests already observed are dropped; both are
/// counted and reported in the stream (see ``takeDropped()``). The reader takes whatever has
/// queued up at once (``nextBatch()``): at a high rate, one wake-up and one write carry many events.
public final class TapSubscription: Sendable {
    public let id: UInt64
    public let predicate: TapPredicate
    public let maxRPS: Int
    public let limit: Int?
    /// Request headers reported with each request (lower-case names).
    public let extractHeaders: [String]
    private let state = Mutex(State())
    private let bufferSize: Int
    /// Events queued and not yet taken by the reader (read without the lock on every admitted request).
    private let pending = Atomic<Int>(0)
    private let droppedEvents = Atomic<Int>(0)
    private let droppedRequests = Atomic<Int>(0)

    private struct State {
        var windowStart: UInt64 = 0
        var inWindow = 0
        var admitted = 0
        var open = 0
        /// No more requests are observed and no more events come; those queued are still taken.
        var finished = false
        /// It finished because its limit's requests were all over (not closed).
        var reachedLimit = false
        var events: [TapEvent] = []
        /// The reader, while it waits for an event (then `events` is empty).
        var reader: CheckedContinuation<[TapEvent]?, Never>?

        /// Ends the tap; returns the waiting reader, which is to get nil (a later one gets what is
        /// still queued, then nil).
        mutating func finish() -> CheckedContinuation<[TapEvent]?, Never>? {
            finished = true
            return reader.take()
        }
    }

    init(id: UInt64, predicate: TapPredicate, maxRPS: Int, limit: Int?, extractHeaders: [String], bufferSize: Int) {
        self.id = id
        self.predicate = predicate
        self.maxRPS = max(1, maxRPS)
        self.limit = limit
        self.extractHeaders = extractHeaders.map { $0.lowercased() }
        self.bufferSize = max(1, bufferSize)
    }

    /// Every event queued, in order (at least one: waits when none is), which frees their room in
    /// the buffer; nil once the tap has ended (its limit's requests over, or closed) and its events
    /// are all taken, or when the calling task is cancelled. One reader at a time.
    public func nextBatch() async -> [TapEvent]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (reader: CheckedContinuation<[TapEvent]?, Never>) in
                let answer: [TapEvent]?? = state.withLock { state in
                    if !state.events.isEmpty {
                        var batch: [TapEvent] = []
                        swap(&batch, &state.events)
                        pending.subtract(batch.count, ordering: .relaxed)
                        return .some(batch)
                    }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.reader = reader
                    return .none
                }
                if let answer { reader.resume(returning: answer) }
            }
        } onCancel: {
            state.withLock { $0.reader.take() }?.resume(returning: nil)
        }
    }

    /// Whether the tap ended because its limit's requests were all over, rather than being closed
    /// (``TapHub/unsubscribe(_:)``) or left by a cancelled reader.
    public var reachedLimit: Bool {
        state.withLock { $0.reachedLimit }
    }

    /// Events and requests lost so far and not yet reported; resets the counts.
    public func takeDropped() -> (events: Int, requests: Int) {
        (droppedEvents.exchange(0, ordering: .relaxed), droppedRequests.exchange(0, ordering: .relaxed))
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

    /// Queues an event without waiting (hands it to the reader if it waits); counts it as dropped
    /// when the buffer is full.
    public func send(_ event: TapEvent) {
        let waiting: CheckedContinuation<[TapEvent]?, Never>? = state.withLock { state in
            guard !state.finished else { return nil }
            if let reader = state.reader.take() { return reader }
            guard state.events.count < bufferSize else {
                droppedEvents.add(1, ordering: .relaxed)
                TapSubscription.globalDropped.add(1, ordering: .relaxed)
                return nil
            }
            state.events.append(event)
            pending.add(1, ordering: .relaxed)
            return nil
        }
        waiting?.resume(returning: [event])
    }

    /// One admitted request is over; the stream ends once the limit's requests are all over.
    public func requestEnded() {
        state.withLock { state -> CheckedContinuation<[TapEvent]?, Never>? in
            state.open -= 1
            guard let limit, state.admitted >= limit, state.open == 0, !state.finished else { return nil }
            state.reachedLimit = true
            return state.finish()
        }?.resume(returning: nil)
    }

    func finish() {
        state.withLock { $0.finish() }?.resume(returning: nil)
    }

    /// Events dropped by every tap, over the proxy's lifetime.
    static let globalDropped = Atomic<Int>(0)
}
