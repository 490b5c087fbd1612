import WeftFilter
import WeftTelemetry

/// Builds the `retry` filter: validates each policy against the routes declared earlier in the
/// chain and gives every route its own budget (and retry counters when metrics are on).
public struct RetryFilterFactory: FilterFactory {
    public let name = "retry"
    public let metrics: MeshMetrics?

    public init(metrics: MeshMetrics? = nil) {
        self.metrics = metrics
    }

    /// gRPC status names as the retry config writes them.
    static let grpcCodes: [String: Int] = [
        "cancelled": 1, "unknown": 2, "invalid-argument": 3, "deadline-exceeded": 4, "not-found": 5, "already-exists": 6,
        "permission-denied": 7, "resource-exhausted": 8, "failed-precondition": 9, "aborted": 10, "out-of-range": 11,
        "unimplemented": 12, "internal": 13, "unavailable": 14, "data-loss": 15, "unauthenticated": 16,
    ]

    public func makeFilter(config: RetryFilterConfig, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter {
        guard config.budget.ratio >= 0, config.budget.minPerSecond >= 0 else {
            throw FilterConfigError(field: "budget", message: "ratio and minPerSecond must not be negative")
        }
        guard config.budget.window.nanoseconds >= 1_000_000_000 else {
            throw FilterConfigError(field: "budget.window", message: "must be at least 1s")
        }
        let declared = Set(context.declarations.routeNames)
        var directives: [String: RetryFilter.Policy] = [:]
        for (index, policy) in config.policies.enumerated() {
            let field = "policies[\(index)]"
            guard policy.maxRetries >= 0, policy.maxRetries <= 10 else {
                throw FilterConfigError(field: "\(field).maxRetries", message: "must be between 0 and 10")
            }
            guard policy.maxBufferedBody >= 0 else {
                throw FilterConfigError(field: "\(field).maxBufferedBody", message: "must not be negative")
            }
            var conditions = RetryConditions()
            conditions.perTryTimeout = policy.perTryTimeout != nil
            for (position, condition) in policy.on.enumerated() {
                switch condition.lowercased() {
                case "5xx": conditions.serverErrors = true
                case "gateway-error": conditions.gatewayErrors = true
                case "connect-failure": conditions.connectFailure = true
                case "reset": conditions.reset = true
                default:
                    guard let code = Int(condition), (100...599).contains(code) else {
                        throw FilterConfigError(field: "\(field).on[\(position)]",
                                                message: "'\(condition)' is not 5xx, gateway-error, connect-failure, reset or a status code")
                    }
                    conditions.statusCodes.insert(code)
                }
            }
            for (position, status) in policy.grpc.enumerated() {
                let key = status.lowercased().replacingOccurrences(of: "_", with: "-")
                guard let code = Self.grpcCodes[key] ?? Int(status).flatMap({ (0...16).contains($0) ? $0 : nil }) else {
                    throw FilterConfigError(field: "\(field).grpc[\(position)]", message: "'\(status)' is not a gRPC status")
                }
                conditions.grpcStatuses.insert(code)
            }
            for (position, route) in policy.routes.enumerated() {
                guard declared.contains(route) else {
                    let known = declared.sorted().joined(separator: ", ")
                    throw FilterConfigError(field: "\(field).routes[\(position)]",
                                            message: "no route '\(route)' in a route filter before this one; routes: \(known.isEmpty ? "none" : known)")
                }
                guard directives[route] == nil else {
                    throw FilterConfigError(field: "\(field).routes[\(position)]", message: "route '\(route)' has two retry policies")
                }
                let budget = RetryBudget(ratio: config.budget.ratio, minPerSecond: config.budget.minPerSecond,
                                         windowSeconds: Int(config.budget.window.nanoseconds / 1_000_000_000))
                let directive = RetryDirective(
                    maxRetries: policy.maxRetries, conditions: conditions, perTryTimeout: policy.perTryTimeout?.timeAmount,
                    backoffBase: policy.backoff.base.timeAmount, backoffMax: policy.backoff.max.timeAmount,
                    maxBufferedBody: policy.maxBufferedBody, budget: budget,
                    observer: metrics?.retries(direction: context.direction, identity: context.identity, route: route))
                directives[route] = RetryFilter.Policy(directive: directive, retryNonIdempotent: policy.retryNonIdempotent)
            }
        }
        return RetryFilter(policies: directives)
    }
}
