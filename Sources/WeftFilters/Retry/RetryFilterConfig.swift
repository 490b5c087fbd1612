import WeftFilter

/// Config of the `retry` filter: which routes retry, on what, and the budget bounding them.
///
/// ```yaml
/// - name: retry            # after `route`: policies name its routes
///   config:
///     budget: { ratio: 0.2, minPerSecond: 10, window: 10s }   # Linkerd's defaults
///     policies:
///       - routes: [vote]
///         maxRetries: 2
///         on: [gateway-error, connect-failure, reset]          # or 5xx, or status codes: [503, 429]
///         grpc: [unavailable, resource-exhausted]
///         perTryTimeout: 500ms
///         backoff: { base: 25ms, max: 250ms }
///         retryNonIdempotent: false                           # POST, PATCH… only when true (gRPC
///                                                             # calls are retried when `grpc` lists statuses)
///         maxBufferedBody: 65536                               # bigger requests are sent once
/// ```
public struct RetryFilterConfig: Decodable, Sendable {
    public var budget: RetryBudgetConfig
    public var policies: [RetryPolicyConfig]

    enum CodingKeys: String, CodingKey, CaseIterable { case budget, policies }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        budget = try container.decodeIfPresent(RetryBudgetConfig.self, forKey: .budget) ?? RetryBudgetConfig()
        policies = try container.decodeIfPresent([RetryPolicyConfig].self, forKey: .policies) ?? []
    }
}

/// Each route's retries may add at most `ratio` of its requests plus `minPerSecond` per second, over `window`.
public struct RetryBudgetConfig: Decodable, Sendable {
    public var ratio = 0.2
    public var minPerSecond = 10
    public var window = ConfigDuration.seconds(10)

    enum CodingKeys: String, CodingKey, CaseIterable { case ratio, minPerSecond, window }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ratio = try container.decodeIfPresent(Double.self, forKey: .ratio) ?? ratio
        minPerSecond = try container.decodeIfPresent(Int.self, forKey: .minPerSecond) ?? minPerSecond
        window = try container.decodeIfPresent(ConfigDuration.self, forKey: .window) ?? window
    }
}

/// One retry policy and the routes it applies to.
public struct RetryPolicyConfig: Decodable, Sendable {
    public var routes: [String]
    public var maxRetries = 2
    /// `5xx`, `gateway-error` (502, 503, 504), `connect-failure`, `reset`, or a status code.
    public var on: [String] = ["gateway-error", "connect-failure", "reset"]
    /// gRPC status names (`unavailable`, `resource-exhausted`, …) or numbers, in trailers-only responses.
    public var grpc: [String] = []
    public var perTryTimeout: ConfigDuration?
    public var backoff = BackoffConfig()
    public var retryNonIdempotent = false
    public var maxBufferedBody = 65_536

    enum CodingKeys: String, CodingKey, CaseIterable {
        case routes, maxRetries, on, grpc, perTryTimeout, backoff, retryNonIdempotent, maxBufferedBody
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        routes = try container.decode(OneOrMany<String>.self, forKey: .routes).values
        maxRetries = try container.decodeIfPresent(Int.self, forKey: .maxRetries) ?? maxRetries
        on = try container.decodeIfPresent(OneOrMany<String>.self, forKey: .on)?.values ?? on
        grpc = try container.decodeIfPresent(OneOrMany<String>.self, forKey: .grpc)?.values ?? grpc
        perTryTimeout = try container.decodeIfPresent(ConfigDuration.self, forKey: .perTryTimeout)
        backoff = try container.decodeIfPresent(BackoffConfig.self, forKey: .backoff) ?? backoff
        retryNonIdempotent = try container.decodeIfPresent(Bool.self, forKey: .retryNonIdempotent) ?? false
        maxBufferedBody = try container.decodeIfPresent(Int.self, forKey: .maxBufferedBody) ?? maxBufferedBody
    }
}

/// Exponential back-off with full jitter: retry n waits a random time up to min(max, base · 2ⁿ⁻¹).
public struct BackoffConfig: Decodable, Sendable {
    public var base = ConfigDuration.milliseconds(25)
    public var max = ConfigDuration.milliseconds(250)

    enum CodingKeys: String, CodingKey, CaseIterable { case base, max }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        base = try container.decodeIfPresent(ConfigDuration.self, forKey: .base) ?? base
        max = try container.decodeIfPresent(ConfigDuration.self, forKey: .max) ?? max
    }
}
