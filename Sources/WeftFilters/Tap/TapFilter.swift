import HTTPTypes
import NIOCore
import WeftFilter
import WeftTelemetry

/// Streams the events of matching requests to the open taps.
///
/// While nobody taps, a request costs one atomic load (``TapHub/isActive``, when it is sent
/// upstream, or when it ends if the proxy answered it) and nothing else. Requests answered by
/// an earlier filter (a route's 404, a filter's 403) are reported too, whole, when they end.
/// A tap opened mid-request sees only requests sent after it.
struct TapFilter: HTTPFilter {
    let hub: TapHub
    let redactedHeaders: Set<String>

    func onDispatch(_ target: UpstreamTarget, context: RequestContext) {
        guard hub.isActive, let request = context.request else { return }
        let tapped = TappedExchange(request: request)
        // Kept only when some tap observes the request: the others cost no per-request storage.
        if tapped.begin(hub: hub, context: context, redactedHeaders: redactedHeaders) {
            context[TappedExchange.self] = tapped
        }
    }

    func onResponseHead(_ response: inout HTTPResponse, context: RequestContext) -> StreamAction {
        context[TappedExchange.self]?.responseStarted(status: response.status.code, context: context)
        return .continue
    }

    func onComplete(_ outcome: ExchangeOutcome, context: RequestContext) {
        let tapped: TappedExchange
        if let dispatched = context[TappedExchange.self] {
            tapped = dispatched
        } else {
            // Answered by the proxy before it was sent anywhere: report it whole.
            guard hub.isActive, !context.wasDispatched, let request = context.request else { return }
            tapped = TappedExchange(request: request)
            tapped.begin(hub: hub, context: context, redactedHeaders: redactedHeaders)
        }
        if !tapped.responseReported, let status = context.responseStatus {
            tapped.responseStarted(status: status.code, context: context)
        }
        tapped.end(outcome, context: context)
    }
}
