import WeftFilter

/// Config of the `route` filter.
///
/// ```yaml
/// - name: route
///   config:
///     onNoMatch: passthrough        # or reject (404)
///     routes:
///       - name: user-by-id
///         match:
///           method: [GET, HEAD]
///           path: { regex: '/users/(?<id>[0-9]+)' }
///           headers: [{ name: x-canary, value: "1" }]
///         backend: users
///         timeout: 2s
/// ```
public struct RouteFilterConfig: Decodable, Sendable {
    /// Routes in precedence order: the first that matches wins.
    public var routes: [RouteConfig]
    /// What happens to a request no route matches.
    public var onNoMatch: NoMatchPolicy

    enum CodingKeys: String, CodingKey, CaseIterable { case routes, onNoMatch }

    public init(routes: [RouteConfig] = [], onNoMatch: NoMatchPolicy = .passthrough) {
        self.routes = routes
        self.onNoMatch = onNoMatch
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        routes = try container.decodeIfPresent([RouteConfig].self, forKey: .routes) ?? []
        onNoMatch = try container.decodeIfPresent(NoMatchPolicy.self, forKey: .onNoMatch) ?? .passthrough
    }
}

/// What the route filter does with a request that matches no route.
public enum NoMatchPolicy: String, Decodable, Sendable {
    /// Send it where it was headed: the local app inbound, the service named by its authority outbound.
    case passthrough
    /// Answer 404 with `weft-proxy-error: no route`.
    case reject
}

/// One route.
public struct RouteConfig: Decodable, Sendable {
    /// Unique name; labels metrics and tap.
    public var name: String
    /// Conditions; absent matches every request.
    public var match: RouteMatchConfig
    /// The backend (a name from `backends:`, or `app` inbound) requests go to.
    public var backend: String
    /// Longest wait for the response head before answering 504; absent means no limit.
    public var timeout: ConfigDuration?
    /// Reserved for the route's retry policy, which the `retry` filter will read. Until that
    /// filter exists a `retry:` key is rejected rather than silently ignored.
    public var retryPolicyGiven: Bool

    enum CodingKeys: String, CodingKey, CaseIterable { case name, match, backend, timeout, retry }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        match = try container.decodeIfPresent(RouteMatchConfig.self, forKey: .match) ?? RouteMatchConfig()
        backend = try container.decode(String.self, forKey: .backend)
        timeout = try container.decodeIfPresent(ConfigDuration.self, forKey: .timeout)
        retryPolicyGiven = container.contains(.retry)
    }
}

/// A route's conditions as written in config.
public struct RouteMatchConfig: Decodable, Sendable {
    public var method: OneOrMany<String>?
    public var authority: StringMatchConfig?
    public var path: StringMatchConfig?
    public var headers: [HeaderMatchConfig]

    enum CodingKeys: String, CodingKey, CaseIterable { case method, authority, path, headers }

    public init() {
        headers = []
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        method = try container.decodeIfPresent(OneOrMany<String>.self, forKey: .method)
        authority = try container.decodeIfPresent(StringMatchConfig.self, forKey: .authority)
        path = try container.decodeIfPresent(StringMatchConfig.self, forKey: .path)
        headers = try container.decodeIfPresent([HeaderMatchConfig].self, forKey: .headers) ?? []
    }
}

/// A header condition: `{ name: x-user }` (present) or `{ name: x-user, value: {regex: '…'} }`.
public struct HeaderMatchConfig: Decodable, Sendable {
    public var name: String
    public var value: StringMatchConfig?

    enum CodingKeys: String, CodingKey, CaseIterable { case name, value }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        value = try container.decodeIfPresent(StringMatchConfig.self, forKey: .value)
    }
}

/// A value condition: a plain string (exact), or exactly one of `exact`, `prefix`, `regex`.
public enum StringMatchConfig: Decodable, Sendable, Equatable {
    case exact(String)
    case prefix(String)
    case regex(String)

    enum CodingKeys: String, CodingKey, CaseIterable { case exact, prefix, regex }

    public init(from decoder: any Decoder) throws {
        if let plain = try? decoder.singleValueContainer().decode(String.self) {
            self = .exact(plain)
            return
        }
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let present = container.allKeys
        guard present.count == 1, let key = present.first else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "give exactly one of exact, prefix or regex"))
        }
        let value = try container.decode(String.self, forKey: key)
        switch key {
        case .exact: self = .exact(value)
        case .prefix: self = .prefix(value)
        case .regex: self = .regex(value)
        }
    }
}
