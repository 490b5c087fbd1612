import HTTPTypes
import Testing
import WeftFilter
import WeftRegex
@testable import WeftTelemetry

@Suite struct TapSubscriptionTests {
    let scratch = MatchScratch()
    let anyRequest = TappedRequest(direction: .inbound, request: HTTPRequest(method: .get, scheme: "http", authority: "a", path: "/"),
                                   source: "", upstream: nil)

    func event(_ id: UInt64) -> TapEvent {
        TapEvent(context: .init(id: id, direction: .inbound, source: "", destination: "", destinationService: nil, tls: false, route: nil),
                 kind: .responseInit(status: 200, latencyMicros: 1))
    }

    @Test func theHubIsIdleUntilATapOpensAndAgainAfterTheLastCloses() {
        let hub = TapHub()
        #expect(!hub.isActive)
        let first = hub.subscribe(.everything)
        let second = hub.subscribe(.everything)
        #expect(hub.isActive && hub.activeTaps == 2)
        hub.unsubscribe(first)
        #expect(hub.isActive)
        hub.unsubscribe(second)
        #expect(!hub.isActive)
    }

    @Test func maxRPSAdmitsAtMostThatManyRequestsInASecond() {
        let hub = TapHub()
        let tap = hub.subscribe(.everything, maxRPS: 5)
        defer { hub.unsubscribe(tap) }
        // 50 requests arrive at once (within one or two clock seconds): at most 5 per second pass.
        let admitted = (0..<50).filter { _ in !hub.admit(anyRequest, scratch: scratch).isEmpty }.count
        #expect(admitted >= 5 && admitted <= 10)
    }

    @Test func aSlowReaderLosesEventsButNeverBlocksTheSender() async {
        let hub = TapHub()
        let tap = hub.subscribe(.everything, bufferSize: 10)
        defer { hub.unsubscribe(tap) }
        let droppedBefore = hub.droppedEvents
        for id in 0..<1_000 { tap.send(event(UInt64(id))) }   // returns at once, nobody reads
        #expect(tap.takeDropped().events == 990)
        #expect(tap.takeDropped().events == 0)
        #expect(hub.droppedEvents - droppedBefore >= 990)
        // While the buffer is full, new requests are not observed for this tap at all.
        #expect(hub.admit(anyRequest, scratch: scratch).isEmpty)
        #expect(tap.takeDropped().requests == 1)
        // The oldest events are the ones kept, in order, all taken at once; once the reader has
        // taken them, requests are observed again.
        let batch = await tap.nextBatch()
        #expect(batch?.map(\.context.id) == Array(0..<10))
        #expect(hub.admit(anyRequest, scratch: scratch).count == 1)
    }

    @Test func aLimitedTapEndsOnceItsRequestsAreOver() async {
        let hub = TapHub()
        let tap = hub.subscribe(.everything, limit: 2)
        defer { hub.unsubscribe(tap) }
        let first = hub.admit(anyRequest, scratch: scratch)
        let second = hub.admit(anyRequest, scratch: scratch)
        let third = hub.admit(anyRequest, scratch: scratch)
        #expect(first.count == 1 && second.count == 1 && third.isEmpty)
        tap.send(event(1))
        tap.requestEnded()
        tap.send(event(2))
        tap.requestEnded()
        var ids: [UInt64] = []
        while let batch = await tap.nextBatch() { ids += batch.map(\.context.id) }   // ends: the limit's requests are over
        #expect(ids == [1, 2])
        #expect(tap.reachedLimit)
    }

    /// A tap ended otherwise did not reach a limit, with one or not: the proxy's tap service tells
    /// its tapper the two apart (OK against UNAVAILABLE).
    @Test func aClosedTapDidNotReachItsLimit() async {
        let hub = TapHub()
        let unlimited = hub.subscribe(.everything)
        let limited = hub.subscribe(.everything, limit: 2)
        #expect(hub.admit(anyRequest, scratch: scratch).count == 2)
        limited.requestEnded()   // one of its two requests over
        hub.unsubscribe(unlimited)
        hub.unsubscribe(limited)
        #expect(await unlimited.nextBatch() == nil)
        #expect(await limited.nextBatch() == nil)
        #expect(!unlimited.reachedLimit && !limited.reachedLimit)
    }

    @Test(.timeLimit(.minutes(1))) func aWaitingReaderGetsEachEventAsItComesAndNilWhenTheTapCloses() async {
        let hub = TapHub()
        let tap = hub.subscribe(.everything)
        let reader = Task { () -> [[UInt64]] in
            var batches: [[UInt64]] = []
            while let batch = await tap.nextBatch() { batches.append(batch.map(\.context.id)) }
            return batches
        }
        // The reader waits before anything is sent: each event wakes it with a batch of one.
        try? await Task.sleep(for: .milliseconds(100))
        tap.send(event(1))
        try? await Task.sleep(for: .milliseconds(100))
        tap.send(event(2))
        try? await Task.sleep(for: .milliseconds(100))
        hub.unsubscribe(tap)
        #expect(await reader.value == [[1], [2]])
    }

    @Test(.timeLimit(.minutes(1))) func aCancelledReaderStopsWaiting() async {
        let hub = TapHub()
        let tap = hub.subscribe(.everything)
        defer { hub.unsubscribe(tap) }
        let reader = Task { await tap.nextBatch() }
        try? await Task.sleep(for: .milliseconds(100))
        reader.cancel()
        #expect(await reader.value == nil)
    }
}
