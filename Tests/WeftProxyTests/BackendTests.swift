import NIOCore
import Testing
import WeftFilter
@testable import WeftProxy

/// The balancer's choice of endpoint for a try.
@Suite struct BackendTests {
    // Addresses no other test uses: endpoint state is shared process-wide, by address.
    let a = ListenAddress(host: "10.9.0.1", port: 8001)
    let b = ListenAddress(host: "10.9.0.2", port: 8001)
    let c = ListenAddress(host: "10.9.0.3", port: 8001)

    @Test func aRetryGoesToAnEndpointNotTriedYetWhileThereIsOne() {
        let backend = Backend(service: ServiceIdentity(service: "pick-retry"), endpoints: [a, b, c])
        for _ in 0..<200 {
            guard case .success(let pick) = backend.pick(avoiding: [a, c]) else {
                Issue.record("no endpoint picked")
                return
            }
            #expect(pick.address == b)
        }
        // Every endpoint tried already: any of them will do, and each gets picked.
        var seen: Set<ListenAddress> = []
        for _ in 0..<200 {
            if case .success(let pick) = backend.pick(avoiding: [a, b, c]) { seen.insert(pick.address) }
        }
        #expect(seen == [a, b, c])
    }

    @Test func aTrippedEndpointIsLeftOutUntilItsPenaltyIsOver() {
        let d = ListenAddress(host: "10.9.0.4", port: 8001), e = ListenAddress(host: "10.9.0.5", port: 8001)
        let backend = Backend(service: ServiceIdentity(service: "pick-tripped"), endpoints: [d, e])
        let policy = FailureAccrual(consecutiveFailures: 1, minPenalty: .seconds(60), maxPenalty: .seconds(60))
        let tripped = EndpointStates.state(for: d)
        tripped.begin(probe: false)
        tripped.end(.failure, policy: policy)
        for _ in 0..<100 {
            guard case .success(let pick) = backend.pick() else {
                Issue.record("no endpoint picked")
                return
            }
            #expect(pick.address == e)
        }
    }
}
