import HTTPTypes
import WeftFilter

/// Chooses the retry policy of a request's route and counts the request in the route's budget.
/// The proxy's router carries the retries out: it keeps the request (up to the policy's body
/// bound), and when a try fails in a way the policy names, sends it again after a back-off,
/// preferring another endpoint, while the budget allows.
struct RetryFilter: HTTPFilter {
    struct Policy: Sendable {
        var directive: RetryDirective
        var retryNonIdempotent: Bool
        /// gRPC calls are all POSTs: a policy that names gRPC statuses has opted in to retrying them.
        var retriesGRPC: Bool { !directive.conditions.grpcStatuses.isEmpty }
    }

    let policies: [String: Policy]

    func onRequestHead(_ request: inout HTTPRequest, context: RequestContext) -> FilterAction {
        guard let route = context.routeName, let policy = policies[route] else { return .continue }
        guard policy.retryNonIdempotent || (context.isGRPC && policy.retriesGRPC) || Self.isIdempotent(request.method) else {
            return .continue
        }
        policy.directive.budget.recordRequest()
        context.retry = policy.directive
        return .continue
    }

    /// RFC 9110 §9.2.2: safe methods, PUT and DELETE.
    static func isIdempotent(_ method: HTTPRequest.Method) -> Bool {
        switch method {
        case .get, .head, .options, .trace, .put, .delete: return true
        default: return false
        }
    }
}
