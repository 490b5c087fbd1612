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
    /// How long events gather between two writes to a tapper (its buffer holds 1 000: at 10 ms,
    /// 100 000 events a second fit).
    static let gathering: Duration = .milliseconds(10)

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
            // What queued up while the last batch was written goes out in one write.
            while let batch = await subscription.nextBatch() {
                var messages: [Weft_Tap_V1_TapEvent] = []
                messages.reserveCapacity(batch.count + 1)
                let dropped = subscription.takeDropped()
                if dropped.events > 0 || dropped.requests > 0 {
                    var report = Weft_Tap_V1_TapEvent()
                    report.dropped.events = UInt64(dropped.events)
                    report.dropped.requests = UInt64(dropped.requests)
                    messages.append(report)
                }
                for event in batch { messages.append(Weft_Tap_V1_TapEvent(event)) }
                try await response.write(contentsOf: messages)
                // Let the next events gather: each wake-up of this task is a thread switch on the
                // proxy's core, and at a busy proxy's rate one per event or two costs more than
                // the request it describes. People read taps; 10 ms is not seen.
                try? await Task.sleep(for: Self.gathering)
            }
        } onCancelRPC: {
            hub.unsubscribe(subscription)
        }
        // OK says "limit reached" to the tapper, which then exits quietly. Any other end is the
        // proxy stopping (its server cancels the handlers, through the task or through the RPC's
        // cancellation handler above, in either order: the task is not always cancelled yet by
        // now) or the client gone (then nobody reads this): say what happened.
        guard subscription.reachedLimit else {
            throw RPCError(code: .unavailable, message: "the proxy is shutting down")
        }
    }
}
