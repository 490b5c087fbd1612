import HTTPTypes
import NIOCore
import WeftFilter
import WeftTelemetry

/// Streams the events of matching requests to the open taps.
///
/// While nobody taps, a request costs one atomic load (``TapHub/isActive``) and nothing else.
/// A tap opened mid-request sees only requests that start after it.
struct TapFilter: HTTPFilter {
    let hub: TapHub
    let redactedHeaders: Set<String>

    func onRequestHead(_ request: inout HTTPRequest, context: RequestContext) -> FilterAction {
        if hub.isActive {
            context[TappedExchange.self] = TappedExchange(request: request)
        }
        return .continue
    }

    func onDispatch(_ target: UpstreamTarget, context: RequestContext) {
        guard let tapped = context[TappedExchange.self] else { return }
        tapped.begin(hub: hub, context: context, redactedHeaders: redactedHeaders)
    }

    func onResponseHead(_ response: inout HTTPResponse, context: RequestContext) -> StreamAction {
        guard let tapped = context[TappedExchange.self] else { return .continue }
        tapped.responseStarted(status: response.status.code, context: context)
        return .continue
    }

    func onComplete(_ outcome: ExchangeOutcome, context: RequestContext) {
        guard let tapped = context[TappedExchange.self] else { return }
        if !tapped.begun {
            // Answered by the proxy before it was sent anywhere: report it whole.
            tapped.begin(hub: hub, context: context, redactedHeaders: redactedHeaders)
        }
        if !tapped.responseReported, let status = context.responseStatus {
            tapped.responseStarted(status: status.code, context: context)
        }
        tapped.end(outcome, context: context)
    }
}
