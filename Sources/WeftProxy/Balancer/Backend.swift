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
    /// alone, as its probe.
    func pick(avoiding: [ListenAddress] = []) -> Result<Pick, NoEndpoint> {
        guard !states.isEmpty else { return .failure(.none) }
        let now = NIODeadline.now()
        var open: [EndpointState] = []
        for state in states {
            switch state.availability(now: now) {
            case .open: open.append(state)
            case .probe: return .success(Pick(state: state, probe: true))
            case .tripped: continue
            }
        }
        guard !open.isEmpty else { return .failure(.allTripped) }
        let fresh = open.filter { !avoiding.contains($0.address) }
        let candidates = fresh.isEmpty ? open : fresh
        if candidates.count == 1 { return .success(Pick(state: candidates[0], probe: false)) }
        let first = Int.random(in: 0..<candidates.count)
        var second = Int.random(in: 0..<(candidates.count - 1))
        if second >= first { second += 1 }
        let a = candidates[first], b = candidates[second]
        return .success(Pick(state: a.cost(now: now) <= b.cost(now: now) ? a : b, probe: false))
    }
}
