import WeftFilter

/// Config of the `protocol-detect` connection filter.
///
/// ```yaml
/// - name: protocol-detect
///   config:
///     timeout: 10s                 # then the connection is treated as opaque TCP
///     opaquePorts: [25, 3306]      # destinations that skip detection (server-speaks-first)
/// ```
public struct ProtocolDetectConfig: Decodable, Sendable {
    /// How long to wait for the first bytes to tell the protocol (Linkerd's default: 10 s).
    public var timeout: ConfigDuration
    /// Destination ports whose connections are opaque TCP without detection. Default: Linkerd's
    /// list of server-speaks-first protocols (SMTP, MySQL, Galera, PostgreSQL, Redis,
    /// Elasticsearch, Memcached).
    public var opaquePorts: [Int]

    public static let defaultOpaquePorts = [25, 587, 3306, 4444, 5432, 6379, 9300, 11211]

    enum CodingKeys: String, CodingKey, CaseIterable { case timeout, opaquePorts }

    public init(timeout: ConfigDuration = .seconds(10), opaquePorts: [Int] = Self.defaultOpaquePorts) {
        self.timeout = timeout
        self.opaquePorts = opaquePorts
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        timeout = try container.decodeIfPresent(ConfigDuration.self, forKey: .timeout) ?? .seconds(10)
        opaquePorts = try container.decodeIfPresent([Int].self, forKey: .opaquePorts) ?? Self.defaultOpaquePorts
    }
}
