import NIOCore
import Testing
@testable import WeftProxy

@Suite struct EndpointStateTests {
    let policy = FailureAccrual(consecutiveFailures: 3, minPenalty: .seconds(1), maxPenalty: .seconds(8))
    let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000_000)

    func endpoint() -> EndpointState { EndpointState(address: ListenAddress(host: "10.0.0.1", port: 80)) }

    @Test func aSlowerResponseRaisesTheEstimateAtOnceAndFastOnesPullItDownSlowly() {
        let state = endpoint()
        state.begin(probe: false)
        state.end(.success(latency: .milliseconds(50)), policy: policy, now: t0)
        #expect(state.latency == .milliseconds(50), "the peak counts at once")
        state.begin(probe: false)
        state.end(.success(latency: .milliseconds(1)), policy: policy, now: t0 + .seconds(1))
        // One second into a 10 s decay: most of the old estimate remains.
        #expect(state.latency > .milliseconds(40) && state.latency < .milliseconds(50))
    }

    @Test func costGrowsWithRequestsInFlight() {
        let state = endpoint()
        let idle = state.cost(now: t0)
        state.begin(probe: false)
        state.begin(probe: false)
        #expect(state.cost(now: t0) == idle * 3)
    }

    @Test func consecutiveFailuresTripTheEndpointThenOneProbeDecides() {
        let state = endpoint()
        for _ in 0..<2 {
            state.begin(probe: false)
            state.end(.failure, policy: policy, now: t0)
        }
        #expect(state.availability(now: t0) == .open, "two failures are under the threshold of three")
        // A fourth try was in flight when the third failed: its failure must not stretch the penalty.
        state.begin(probe: false)
        state.begin(probe: false)
        state.end(.failure, policy: policy, now: t0)
        state.end(.failure, policy: policy, now: t0)
        #expect(state.availability(now: t0) == .tripped)
        #expect(state.availability(now: t0 + .milliseconds(1_600)) == .probe, "the first penalty is at most 1.5 s")
        state.begin(probe: true)
        #expect(state.availability(now: t0 + .seconds(2)) == .tripped, "one probe at a time")
        state.end(.failure, policy: policy, now: t0 + .seconds(2))
        #expect(state.availability(now: t0 + .seconds(2) + .milliseconds(900)) == .tripped, "a failed probe doubles the penalty (≥ 1 s)")
        #expect(state.availability(now: t0 + .seconds(6)) == .probe)
        state.begin(probe: true)
        state.end(.success(latency: .milliseconds(2)), policy: policy, now: t0 + .seconds(6))
        #expect(state.availability(now: t0 + .seconds(6)) == .open)
    }

    @Test func penaltiesDoubleWithJitterUpToTheMax() {
        for trip in 1...8 {
            let base = min(8.0, Double(1 << (trip - 1)))
            for _ in 0..<20 {
                let seconds = Double(policy.penalty(trip: trip).nanoseconds) / 1e9
                #expect(seconds >= base * 0.5 - 1e-9 && seconds <= min(8, base * 1.5) + 1e-9)
            }
        }
    }
}
