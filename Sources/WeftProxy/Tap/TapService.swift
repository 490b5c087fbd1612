import GRPCCore
import WeftTapAPI
import WeftTelemetry

/// The proxy's tap API (`weft.tap.v1.Tap`): each `Observe` call opens a tap on the hub and
/// streams its events until the client leaves (at once, even with no traffic) or the tap's limit is
/// reached.
struct TapService: Weft_Tap_V1_Tap.SimpleServiceProtocol {
    let hub: TapHub

    /// Requests observed per second when the client does not say.
    static let defaultMaxRPS = 100

    func observe(request: Weft_Tap_V1_ObserveRequest, response: RPCWriter<Weft_Tap_V1_TapEvent>,
                 context: ServerContext) async throws {
        let predicate: TapPredicate
        do {
            predicate = request.hasMatch ? try TapPredicate(request.match) : .everything
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        let subscription = hub.subscribe(
            predicate,
            maxRPS: request.maxRps == 0 ? Self.defaultMaxRPS : Int(request.maxRps),
            limit: request.limit == 0 ? nil : Int(clamping: request.limit),
            extractHeaders: request.extractHeaders)
        defer { hub.unsubscribe(subscription) }
        // gRPC says a client has gone (its stream reset, its connection closed) through this
        // handler, not by cancelling the task: without it, a tapper killed while nothing matched
        // would keep its tap open until the next matching request.
        try await withRPCCancellationHandler {
            for await event in subscription.events {
                subscription.delivered()
                let dropped = subscription.takeDropped()
                if dropped.events > 0 || dropped.requests > 0 {
                    var report = Weft_Tap_V1_TapEvent()
                    report.dropped.events = UInt64(dropped.events)
                    report.dropped.requests = UInt64(dropped.requests)
                    try await response.write(report)
                }
                try await response.write(Weft_Tap_V1_TapEvent(event))
            }
        } onCancelRPC: {
            hub.unsubscribe(subscription)
        }
    }
}
