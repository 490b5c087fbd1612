import NIOCore
import WeftFilter

/// A service and its endpoints, balanced by power of two choices over peak-EWMA latency, with
/// tripped endpoints (failure accrual) left out until their penalty is over.
public final class Backend: Sendable {
    public var name: String { service.service }
    /// The service's name and who serves it.
    public let service: ServiceIdentity
    public let endpoints: [ListenAddress]
    let states: [EndpointState]

    init(service: ServiceIdentity, endpoints: [ListenAddress]) {
        self.service = service
        self.endpoints = endpoints
        self.states = endpoints.map(EndpointStates.state(for:))
    }

    /// A chosen endpoint; `probe` when it is a tripped endpoint's one trial request.
    struct Pick {
        let state: EndpointState
        let probe: Bool
        var address: ListenAddress { state.address }
    }

    /// Why no endpoint could be chosen.
    enum NoEndpoint: Error {
        case none
        /// Every endpoint is tripped and none is due for a probe.
        case allTripped
    }

    /// Two endpoints at random among those available (not in `avoiding` when others exist), the
    /// cheaper of the two by latency × load; a tripped endpoint whose penalty is over is tried
    /// alone, as its probe. Runs for every request: the candidates live on the stack.
    func pick(avoiding: [ListenAddress] = []) -> Result<Pick, NoEndpoint> {
        guard !states.isEmpty else { return .failure(.none) }
        let now = NIODeadline.now()
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: states.count) { open in
            var openCount = 0
            for index in states.indices {
                switch states[index].availability(now: now) {
                case .open:
                    open[openCount] = index
                    openCount += 1
                case .probe: return .success(Pick(state: states[index], probe: true))
                case .tripped: continue
                }
            }
            guard openCount > 0 else { return .failure(.allTripped) }
            // Endpoints not tried yet go first; if every open one was tried, any will do.
            var candidates = openCount
            if !avoiding.isEmpty {
                var fresh = 0
                for position in 0..<openCount where !avoiding.contains(states[open[position]].address) {
                    open.swapAt(position, fresh)
                    fresh += 1
                }
                if fresh > 0 { candidates = fresh }
            }
            if candidates == 1 { return .success(Pick(state: states[open[0]], probe: false)) }
            let first = Int.random(in: 0..<candidates)
            var second = Int.random(in: 0..<(candidates - 1))
            if second >= first { second += 1 }
            let a = states[open[first]], b = states[open[second]]
            return .success(Pick(state: a.cost(now: now) <= b.cost(now: now) ? a : b, probe: false))
        }
    }
}
