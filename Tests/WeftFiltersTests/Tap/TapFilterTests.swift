import HTTPTypes
import NIOCore
import Synchronization
import Testing
import WeftFilter
import WeftFilterTesting
import WeftFilters
import WeftRouting
import WeftTelemetry

@Suite struct TapFilterTests {
    let telemetry = Telemetry()

    func harness() throws -> FilterHarness {
        try FilterHarness(registry: FilterRegistry.builtin(telemetry: telemetry), yaml: """
            - name: route
              config:
                routes:
                  - { name: votes, match: { path: { prefix: /vote } }, backend: voting }
            - name: tap
            """, backendNames: ["voting"])
    }

    func get(_ path: String, _ fields: HTTPFields = [:]) -> HTTPRequest {
        HTTPRequest(method: .get, scheme: "http", authority: "voting", path: path, headerFields: fields)
    }

    /// The first `expected` events (the stream stays open), or what came within 5 s.
    func drain(_ tap: TapSubscription, _ expected: Int) async -> [TapEvent] {
        let collected = Collected()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while let batch = await tap.nextBatch() {
                    for event in batch where collected.append(event) >= expected { return }
                }
            }
            group.addTask { try? await Task.sleep(for: .seconds(5)) }
            await group.next()
            group.cancelAll()
        }
        return collected.events
    }

    @Test func withoutTappersTheFilterKeepsNoState() throws {
        let harness = try harness()
        let sent = harness.sendRequest(get("/vote/a"))
        _ = harness.sendResponse(HTTPResponse(status: .ok), for: sent.context)
        #expect(sent.context.storedValueCount == 0)
        #expect(!telemetry.tap.isActive)
    }

    @Test func aMatchingRequestStreamsItsRequestResponseAndEnd() async throws {
        let harness = try harness()
        let tap = telemetry.tap.subscribe(.path(.prefix("/vote")), extractHeaders: ["user-agent", "authorization"])
        defer { telemetry.tap.unsubscribe(tap) }
        var fields = HTTPFields()
        fields[.userAgent] = "curl/8"
        fields[.authorization] = "Bearer secret"
        let other = harness.sendRequest(get("/list"))
        _ = harness.sendResponse(HTTPResponse(status: .ok), for: other.context)
        let sent = harness.sendRequest(get("/vote/a", fields))
        #expect(sent.context.storedValueCount == 1, "a tapped request keeps its tap state")
        _ = harness.sendResponse(HTTPResponse(status: .serviceUnavailable), body: ["down"], for: sent.context)

        let events = await drain(tap, 3)
        #expect(events.count == 3)
        guard case .requestInit(let method, _, let authority, let path, let headers, _) = events[0].kind else {
            Issue.record("first event is \(events[0].kind)")
            return
        }
        #expect(method == "GET" && authority == "voting" && path == "/vote/a")
        #expect(headers.map(\.name) == ["user-agent", "authorization"])
        #expect(headers.map(\.value) == ["curl/8", "<redacted>"])
        #expect(events[0].context.route == "votes")
        #expect(events[0].context.destinationService?.service == "voting")
        guard case .responseInit(let status, _) = events[1].kind else { Issue.record("no response event"); return }
        #expect(status == 503)
        guard case .responseEnd(let grpcStatus, _, let bytes, let error) = events[2].kind else { Issue.record("no end event"); return }
        #expect(grpcStatus == nil && bytes == 4 && error == nil)
        #expect(Set(events.map(\.context.id)).count == 1)
    }

    @Test func aRequestAnsweredBeforeDispatchIsReportedWhole() async throws {
        let harness = try FilterHarness(registry: FilterRegistry.builtin(telemetry: telemetry), yaml: """
            - name: route
              config: { onNoMatch: reject }
            - name: tap
            """)
        let tap = telemetry.tap.subscribe(.everything)
        defer { telemetry.tap.unsubscribe(tap) }
        let rejected = harness.sendRequest(get("/nowhere"))
        harness.complete(rejected, outcome: .responded(status: 404))
        let events = await drain(tap, 3)
        guard events.count == 3, case .requestInit = events[0].kind, case .responseInit(404, _) = events[1].kind,
              case .responseEnd = events[2].kind else {
            Issue.record("events: \(events.map(\.kind))")
            return
        }
        #expect(events[0].context.destination == "")
    }
}

/// Events gathered by a reading task.
final class Collected: Sendable {
    private let box = Mutex<[TapEvent]>([])
    var events: [TapEvent] { box.withLock { $0 } }
    func append(_ event: TapEvent) -> Int { box.withLock { $0.append(event); return $0.count } }
}
