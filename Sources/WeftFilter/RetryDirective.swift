import NIOCore
import Synchronization

/// How the proxy retries one request: chosen by the `retry` filter from the request's route,
/// carried out by the proxy's router (which alone can re-send a request).
public struct RetryDirective: Sendable {
    /// Retries after the first try (so `maxRetries + 1` tries at most).
    public var maxRetries: Int
    /// Which outcomes of a try are retried.
    public var conditions: RetryConditions
    /// Longest wait for one try's response head; nil for none (the route timeout bounds all tries).
    public var perTryTimeout: TimeAmount?
    /// Back-off before retry n is a random time in [0, min(max, base · 2ⁿ)] ("full jitter").
    public var backoffBase: TimeAmount
    public var backoffMax: TimeAmount
    /// Requests whose body grows past this are sent once, never retried (they are not kept).
    public var maxBufferedBody: Int
    /// Bounds the extra load retries may add; shared by every request of the route.
    public let budget: RetryBudget
    /// Counts this route's retries and exhausted budgets, if metrics are on.
    public let observer: (any RetryObserver)?

    public init(maxRetries: Int, conditions: RetryConditions, perTryTimeout: TimeAmount?, backoffBase: TimeAmount,
                backoffMax: TimeAmount, maxBufferedBody: Int, budget: RetryBudget, observer: (any RetryObserver)? = nil) {
        self.maxRetries = maxRetries
        self.conditions = conditions
        self.perTryTimeout = perTryTimeout
        self.backoffBase = backoffBase
        self.backoffMax = backoffMax
        self.maxBufferedBody = maxBufferedBody
        self.budget = budget
        self.observer = observer
    }

    /// The back-off before retry number `retry` (1 for the first retry).
    public func backoff(beforeRetry retry: Int) -> TimeAmount {
        let ceiling = min(backoffMax.nanoseconds, backoffBase.nanoseconds << min(retry - 1, 20))
        guard ceiling > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...ceiling))
    }
}

/// Which outcomes of one try are worth another.
public struct RetryConditions: Sendable, Equatable {
    /// Any 5xx response.
    public var serverErrors = false
    /// 502, 503, 504.
    public var gatewayErrors = false
    /// No connection could be made (refused, timed out).
    public var connectFailure = false
    /// The upstream reset the stream or closed the connection before responding.
    public var reset = false
    /// The per-try timeout fired before the response head.
    public var perTryTimeout = true
    /// These response statuses.
    public var statusCodes: Set<Int> = []
    /// These gRPC statuses, in a trailers-only response (the call failed before any message).
    public var grpcStatuses: Set<Int> = []

    public init() {}

    /// Whether a response head with `status` (and, for gRPC, `grpcStatus` in the head) is retried.
    public func retries(status: Int, grpcStatus: Int?) -> Bool {
        if serverErrors && status >= 500 && status <= 599 { return true }
        if gatewayErrors && (status == 502 || status == 503 || status == 504) { return true }
        if statusCodes.contains(status) { return true }
        if let grpcStatus, grpcStatuses.contains(grpcStatus) { return true }
        return false
    }
}

/// Receives what the router did about retries (the metrics filter's per-route counters).
public protocol RetryObserver: Sendable {
    /// A retry was sent.
    func retried()
    /// A retry was wanted but the budget had none left.
    func budgetExhausted()
}

/// Linkerd's retry budget: over a sliding window (default 10 s), retries may number at most
/// `ratio` of the original requests plus `minPerSecond` per second of the window. It keeps a
/// partial outage from becoming a retry storm: when every try fails, extra load stays bounded.
public final class RetryBudget: Sendable {
    public let ratio: Double
    public let minPerSecond: Int
    public let windowSeconds: Int
    private let state: Mutex<State>

    private struct State {
        /// Per-second counts, a ring of `windowSeconds` slots.
        var requests: [Int]
        var retries: [Int]
        var currentSecond: Int64 = 0
    }

    public init(ratio: Double = 0.2, minPerSecond: Int = 10, windowSeconds: Int = 10) {
        self.ratio = ratio
        self.minPerSecond = minPerSecond
        self.windowSeconds = max(1, windowSeconds)
        state = Mutex(State(requests: Array(repeating: 0, count: max(1, windowSeconds)),
                            retries: Array(repeating: 0, count: max(1, windowSeconds))))
    }

    /// Counts an original request (each deposits `ratio` of a retry).
    public func recordRequest(now: NIODeadline = .now()) {
        state.withLock { state in
            let slot = advance(&state, to: now)
            state.requests[slot] += 1
        }
    }

    /// Takes one retry from the budget; false when it is spent.
    public func tryWithdraw(now: NIODeadline = .now()) -> Bool {
        state.withLock { state in
            let slot = advance(&state, to: now)
            let requests = state.requests.reduce(0, +)
            let retries = state.retries.reduce(0, +)
            let allowed = Double(minPerSecond * windowSeconds) + ratio * Double(requests)
            guard Double(retries + 1) <= allowed else { return false }
            state.retries[slot] += 1
            return true
        }
    }

    /// Retries sent in the current window.
    public var retriesInWindow: Int { state.withLock { $0.retries.reduce(0, +) } }

    /// Moves the ring to `now`, clearing the seconds that went by; the slot for now.
    private func advance(_ state: inout State, to now: NIODeadline) -> Int {
        let second = Int64(now.uptimeNanoseconds / 1_000_000_000)
        if state.currentSecond == 0 { state.currentSecond = second }
        let elapsed = second - state.currentSecond
        if elapsed > 0 {
            for step in 1...min(Int(elapsed), windowSeconds) {
                let slot = Int((state.currentSecond + Int64(step)) % Int64(windowSeconds))
                state.requests[slot] = 0
                state.retries[slot] = 0
            }
            state.currentSecond = second
        }
        return Int(second % Int64(windowSeconds))
    }
}
