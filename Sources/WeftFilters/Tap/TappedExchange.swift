import Foundation
import HTTPTypes
import NIOCore
import WeftFilter
import WeftTelemetry

/// One request while taps are open: which taps admitted it, and what they were told.
final class TappedExchange: RequestContextKey {
    typealias Value = TappedExchange

    private let request: HTTPRequest
    private var subscriptions: [TapSubscription] = []
    private var eventContext: TapEvent.Context?
    private(set) var responseReported = false

    init(request: HTTPRequest) {
        self.request = request
    }

    /// Asks every tap whether it wants this request and sends the request event to those that do;
    /// whether any did.
    @discardableResult
    func begin(hub: TapHub, context: RequestContext, redactedHeaders: Set<String>) -> Bool {
        let source = Self.describe(context.remoteAddress)
        let candidate = TappedRequest(direction: context.direction, request: request, source: source, upstream: context.upstream)
        subscriptions = hub.admit(candidate, scratch: context.matchScratch)
        guard !subscriptions.isEmpty else { return false }
        let eventContext = TapEvent.Context(
            id: hub.makeRequestID(), direction: context.direction, source: source,
            destination: context.upstream?.endpoint ?? "", destinationService: context.upstream?.service,
            tls: false, route: context.routeName)
        self.eventContext = eventContext
        let elapsed = NIODeadline.now() - context.startTime
        let startedAt = Date().timeIntervalSince1970 - Double(elapsed.nanoseconds) / 1e9
        for subscription in subscriptions {
            var headers: [(name: String, value: String)] = []
            for name in subscription.extractHeaders {
                guard let field = HTTPField.Name(name), let value = request.headerFields[field] else { continue }
                headers.append((name, redactedHeaders.contains(name) ? "<redacted>" : value))
            }
            subscription.send(TapEvent(context: eventContext, kind: .requestInit(
                method: request.method.rawValue, scheme: request.scheme, authority: request.authority,
                path: request.path, headers: headers, timestampMicros: UInt64(max(0, startedAt * 1e6)))))
        }
        return true
    }

    func responseStarted(status: Int, context: RequestContext) {
        responseReported = true
        guard let eventContext else { return }
        let latency = Self.micros(since: context.startTime)
        for subscription in subscriptions {
            subscription.send(TapEvent(context: eventContext, kind: .responseInit(status: status, latencyMicros: latency)))
        }
    }

    func end(_ outcome: ExchangeOutcome, context: RequestContext) {
        guard let eventContext else { return }
        let error: String? = if case .failed(let reason) = outcome { reason } else { nil }
        let event = TapEvent(context: eventContext, kind: .responseEnd(
            grpcStatus: context.grpcStatus, durationMicros: Self.micros(since: context.startTime),
            responseBytes: context.responseBodyBytes, error: error))
        for subscription in subscriptions {
            subscription.send(event)
            subscription.requestEnded()
        }
    }

    private static func micros(since start: NIODeadline) -> UInt64 {
        UInt64(max(0, (NIODeadline.now() - start).nanoseconds / 1_000))
    }

    static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "" }
        return ip.utf8.contains(UInt8(ascii: ":")) ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
