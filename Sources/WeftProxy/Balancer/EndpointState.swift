import Foundation
import NIOCore
import Synchronization

/// Load and health of one endpoint, shared by every event loop and kept across config reloads
/// (see ``EndpointStates``): a peak-EWMA latency estimate, requests in flight, and failure accrual.
///
/// Latency is Linkerd's peak EWMA: a slower response raises the estimate at once, faster ones
/// pull it down with a 10 s decay. Failure accrual is a circuit breaker: after `consecutiveFailures`
/// failed tries in a row the endpoint is tripped for a penalty that doubles with each trip (with
/// jitter); when the penalty is over, one probe request at a time may go; a success closes it.
final class EndpointState: Sendable {
    let address: ListenAddress
    /// `address` as text, made once: it labels every request's upstream (metrics, tap).
    let addressText: String
    private let state = Mutex(State())

    /// The estimate before anything was measured (Linkerd's default RTT estimate is of this order).
    static let initialLatencyNanos = 1_000_000.0
    static let decayNanos = 10_000_000_000.0

    private struct State {
        var latencyNanos = EndpointState.initialLatencyNanos
        var lastUpdate: NIODeadline?
        var pending = 0
        var consecutiveFailures = 0
        var trippedUntil: NIODeadline?
        var trips = 0
        var probing = false
    }

    /// Whether the endpoint may take a request now.
    enum Availability: Equatable {
        case open
        /// Tripped, penalty over: this request would be the one probe.
        case probe
        case tripped
    }

    /// How one try went, for latency and failure accrual.
    enum Outcome {
        case success(latency: TimeAmount)
        case failure
        /// The try ended without a verdict on the endpoint (the client left, a retry superseded it).
        case abandoned
    }

    init(address: ListenAddress) {
        self.address = address
        addressText = address.description
    }

    func availability(now: NIODeadline = .now()) -> Availability {
        state.withLock { state in
            guard let until = state.trippedUntil else { return .open }
            if now < until || state.probing { return .tripped }
            return .probe
        }
    }

    /// The balancer's cost: estimated latency times the requests it would be queued behind.
    func cost(now: NIODeadline = .now()) -> Double {
        state.withLock { state in
            state.latencyNanos * Double(state.pending + 1)
        }
    }

    /// A try starts on this endpoint; `probe` marks the one request a tripped endpoint gets.
    func begin(probe: Bool) {
        state.withLock { state in
            state.pending += 1
            if probe { state.probing = true }
        }
    }

    /// A try on this endpoint is over.
    func end(_ outcome: Outcome, policy: FailureAccrual, now: NIODeadline = .now()) {
        state.withLock { state in
            state.pending = max(0, state.pending - 1)
            switch outcome {
            case .success(let latency):
                let sample = Double(latency.nanoseconds)
                let current = state.latencyNanos
                if sample > current {
                    state.latencyNanos = sample   // the peak counts at once
                } else {
                    let elapsed = state.lastUpdate.map { Double((now - $0).nanoseconds) } ?? 0
                    let weight = exp(-elapsed / Self.decayNanos)
                    state.latencyNanos = current * weight + sample * (1 - weight)
                }
                state.lastUpdate = now
                state.consecutiveFailures = 0
                state.trippedUntil = nil
                state.trips = 0
                state.probing = false
            case .failure:
                state.consecutiveFailures += 1
                // Tries that were in flight when the endpoint tripped fail too: they must not
                // stretch the penalty. Only the threshold while open, or a failed probe, trips.
                let open = state.trippedUntil == nil
                if state.probing || (open && state.consecutiveFailures >= policy.consecutiveFailures) {
                    state.trips += 1
                    state.trippedUntil = now + policy.penalty(trip: state.trips)
                    state.probing = false
                }
            case .abandoned:
                state.probing = false
            }
        }
    }

    /// The latency estimate.
    var latency: TimeAmount {
        state.withLock { .nanoseconds(Int64($0.latencyNanos)) }
    }
}

/// When an endpoint counts as failing, and for how long it is left alone.
struct FailureAccrual: Sendable {
    /// Failed tries in a row that trip the endpoint (Linkerd: 7).
    var consecutiveFailures = 7
    var minPenalty: TimeAmount = .seconds(1)
    var maxPenalty: TimeAmount = .seconds(60)

    /// The penalty of trip number `trip`: min · 2^(trip−1), at most max, with ±50% jitter.
    func penalty(trip: Int) -> TimeAmount {
        let base = min(maxPenalty.nanoseconds, minPenalty.nanoseconds << min(trip - 1, 30))
        let jittered = Double(base) * Double.random(in: 0.5...1.5)
        return .nanoseconds(min(maxPenalty.nanoseconds, Int64(jittered)))
    }
}

/// Every endpoint's state, by address, for the life of the process: a reload that keeps an
/// endpoint keeps what was learned about it.
enum EndpointStates {
    private static let all = Mutex<[ListenAddress: EndpointState]>([:])

    static func state(for address: ListenAddress) -> EndpointState {
        all.withLock { states in
            if let known = states[address] { return known }
            let made = EndpointState(address: address)
            states[address] = made
            return made
        }
    }
}
