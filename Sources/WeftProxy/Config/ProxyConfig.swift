import Foundation
import WeftFilter

/// A proxy's config file, as written. See `config/proxy.yaml` for a commented example.
public struct ProxyConfig: Decodable, Sendable {
    /// Who this proxy is: labels its metrics and tap events.
    public var identity: IdentityConfig
    public var admin: AdminConfig
    public var tap: TapListenerConfig
    public var inbound: InboundConfig
    public var outbound: OutboundConfig
    public var backends: [BackendConfig]
    public var upstream: UpstreamConfig
    /// How the proxy treats client connections.
    public var downstream: DownstreamConfig
    /// How long SIGTERM waits for requests in flight before exiting.
    public var shutdownGracePeriod: ConfigDuration
    /// The controller that pushes filters and endpoints; none means this file is all there is.
    public var controller: ControllerConfig

    enum CodingKeys: String, CodingKey, CaseIterable {
        case identity, admin, tap, inbound, outbound, backends, upstream, downstream, shutdownGracePeriod, controller
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        identity = try container.decodeIfPresent(IdentityConfig.self, forKey: .identity) ?? IdentityConfig()
        admin = try container.decodeIfPresent(AdminConfig.self, forKey: .admin) ?? AdminConfig()
        tap = try container.decodeIfPresent(TapListenerConfig.self, forKey: .tap) ?? TapListenerConfig()
        inbound = try container.decodeIfPresent(InboundConfig.self, forKey: .inbound) ?? InboundConfig()
        outbound = try container.decodeIfPresent(OutboundConfig.self, forKey: .outbound) ?? OutboundConfig()
        backends = try container.decodeIfPresent([BackendConfig].self, forKey: .backends) ?? []
        upstream = try container.decodeIfPresent(UpstreamConfig.self, forKey: .upstream) ?? UpstreamConfig()
        downstream = try container.decodeIfPresent(DownstreamConfig.self, forKey: .downstream) ?? DownstreamConfig()
        shutdownGracePeriod = try container.decodeIfPresent(ConfigDuration.self, forKey: .shutdownGracePeriod) ?? .seconds(30)
        controller = try container.decodeIfPresent(ControllerConfig.self, forKey: .controller) ?? ControllerConfig()
    }

    /// The defaults: every listener on loopback at Linkerd's ports, the app at 127.0.0.1:8080.
    public init() {
        identity = IdentityConfig()
        admin = AdminConfig()
        tap = TapListenerConfig()
        inbound = InboundConfig()
        outbound = OutboundConfig()
        backends = []
        upstream = UpstreamConfig()
        downstream = DownstreamConfig()
        shutdownGracePeriod = .seconds(30)
        controller = ControllerConfig()
    }
}

/// Where the controller's config-push API is. The proxy serves from this file until the first
/// snapshot arrives, keeps its last good config whenever the controller is unreachable, and
/// reconnects with back-off.
public struct ControllerConfig: Decodable, Sendable {
    /// `host:port` of the controller's push API; `$WEFT_CONTROLLER` when absent; none: standalone.
    public var address: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case address }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        address = try container.decodeIfPresent(String.self, forKey: .address)
    }

    /// The address in force: config, then `$WEFT_CONTROLLER`.
    public func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) -> ListenAddress? {
        let text = address ?? environment["WEFT_CONTROLLER"].flatMap { $0.isEmpty ? nil : $0 }
        return text.flatMap(ListenAddress.init(parsing:))
    }
}

/// The proxy's identity. Each field defaults to an environment variable (set by `weft inject`
/// from the Kubernetes downward API, or by `weft up`), then to a fixed default.
public struct IdentityConfig: Decodable, Sendable {
    /// `$WEFT_NAMESPACE`, else `default`.
    public var namespace: String?
    /// `kind/name`, e.g. `deploy/web`; `$WEFT_WORKLOAD`, else none.
    public var workload: String?
    /// The instance (pod) name; `$WEFT_INSTANCE`, else the host name (the pod name in Kubernetes).
    public var instance: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case namespace, workload, instance }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        namespace = try container.decodeIfPresent(String.self, forKey: .namespace)
        workload = try container.decodeIfPresent(String.self, forKey: .workload)
        instance = try container.decodeIfPresent(String.self, forKey: .instance)
    }

    /// The identity in force: config, then environment, then defaults.
    public func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) -> ProxyIdentity {
        func pick(_ value: String?, _ variable: String) -> String? {
            if let value, !value.isEmpty { return value }
            if let value = environment[variable], !value.isEmpty { return value }
            return nil
        }
        return ProxyIdentity(
            namespace: pick(namespace, "WEFT_NAMESPACE") ?? "default",
            workload: pick(workload, "WEFT_WORKLOAD").flatMap(WorkloadRef.init(parsing:)),
            instance: pick(instance, "WEFT_INSTANCE") ?? ProcessInfo.processInfo.hostName)
    }
}

/// The tap listener: the gRPC API `weft tap` streams live requests from.
public struct TapListenerConfig: Decodable, Sendable {
    public var enabled = true
    /// Loopback by default: tap shows request paths and chosen headers, so exposing it is a
    /// deliberate choice (set a non-loopback address and `allowRemote: true`).
    public var address = ListenAddress(host: "127.0.0.1", port: 4190)
    /// Required to bind a non-loopback address.
    public var allowRemote = false

    enum CodingKeys: String, CodingKey, CaseIterable { case enabled, address, allowRemote }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
        address = try container.decodeIfPresent(ListenAddress.self, forKey: .address) ?? address
        allowRemote = try container.decodeIfPresent(Bool.self, forKey: .allowRemote) ?? false
    }
}

/// The admin listener (`/live`, `/ready`, `/config`, `/metrics`).
public struct AdminConfig: Decodable, Sendable {
    public var address: ListenAddress = ListenAddress(host: "127.0.0.1", port: 4191)

    enum CodingKeys: String, CodingKey, CaseIterable { case address }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        address = try container.decodeIfPresent(ListenAddress.self, forKey: .address) ?? address
    }
}

/// The inbound listener: traffic to the local application.
public struct InboundConfig: Decodable, Sendable {
    public var enabled = true
    public var address = ListenAddress(host: "127.0.0.1", port: 4143)
    /// Where the local application listens; the default destination of inbound requests.
    public var app = ListenAddress(host: "127.0.0.1", port: 8080)
    /// The filter chain; absent means `[route]` with no routes (everything to the app).
    public var filters: [FilterEntry]?

    enum CodingKeys: String, CodingKey, CaseIterable { case enabled, address, app, filters }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
        address = try container.decodeIfPresent(ListenAddress.self, forKey: .address) ?? address
        app = try container.decodeIfPresent(ListenAddress.self, forKey: .app) ?? app
        filters = try container.decodeIfPresent([FilterEntry].self, forKey: .filters)
    }
}

/// The outbound listener: traffic from the local application to other services.
public struct OutboundConfig: Decodable, Sendable {
    public var enabled = true
    public var address = ListenAddress(host: "127.0.0.1", port: 4140)
    /// The filter chain; absent means `[route]` with no routes (everything to its authority).
    public var filters: [FilterEntry]?

    enum CodingKeys: String, CodingKey, CaseIterable { case enabled, address, filters }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
        address = try container.decodeIfPresent(ListenAddress.self, forKey: .address) ?? address
        filters = try container.decodeIfPresent([FilterEntry].self, forKey: .filters)
    }
}

/// One `{name, config}` entry of a filter chain. The config is decoded later by the filter's factory.
public struct FilterEntry: Decodable, Sendable {
    public var name: String

    enum CodingKeys: String, CodingKey, CaseIterable { case name, config }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
    }
}

/// A named service and its static endpoints (discovery comes with the controller).
public struct BackendConfig: Decodable, Sendable {
    public var name: String
    public var endpoints: [ListenAddress]
    /// The service's name in metrics (`dst_service`) when the backend's name is an alias (`web.demo`).
    public var service: String?
    /// The namespace of the workload serving it (labels `dst_namespace`).
    public var namespace: String?
    /// The workload serving it, `kind/name` (labels `dst_deployment` etc., and tap's `--to`).
    public var workload: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case name, endpoints, service, namespace, workload }

    public init(name: String, endpoints: [ListenAddress]) {
        self.name = name
        self.endpoints = endpoints
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        endpoints = try container.decodeIfPresent([ListenAddress].self, forKey: .endpoints) ?? []
        service = try container.decodeIfPresent(String.self, forKey: .service)
        namespace = try container.decodeIfPresent(String.self, forKey: .namespace)
        workload = try container.decodeIfPresent(String.self, forKey: .workload)
    }
}

/// How the proxy treats client connections (HTTP; opaque TCP is never cut for idleness).
public struct DownstreamConfig: Decodable, Sendable {
    /// An HTTP client connection with no request in flight for this long is closed.
    public var idleTimeout: ConfigDuration = .seconds(90)

    enum CodingKeys: String, CodingKey, CaseIterable { case idleTimeout }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        idleTimeout = try container.decodeIfPresent(ConfigDuration.self, forKey: .idleTimeout) ?? idleTimeout
    }
}

/// How the proxy talks to upstreams.
public struct UpstreamConfig: Decodable, Sendable {
    /// Longest wait for a TCP connection (Linkerd's outbound default: 1 s).
    public var connectTimeout: ConfigDuration = .seconds(1)
    /// How long an unused pooled connection is kept open.
    public var idleTimeout: ConfigDuration = .seconds(10)
    /// Most idle connections kept per endpoint and event loop.
    public var maxIdlePerEndpoint = 64
    /// When an endpoint is left alone for failing (the circuit breaker).
    public var failureAccrual = FailureAccrualConfig()

    enum CodingKeys: String, CodingKey, CaseIterable { case connectTimeout, idleTimeout, maxIdlePerEndpoint, failureAccrual }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        connectTimeout = try container.decodeIfPresent(ConfigDuration.self, forKey: .connectTimeout) ?? connectTimeout
        idleTimeout = try container.decodeIfPresent(ConfigDuration.self, forKey: .idleTimeout) ?? idleTimeout
        maxIdlePerEndpoint = try container.decodeIfPresent(Int.self, forKey: .maxIdlePerEndpoint) ?? maxIdlePerEndpoint
        failureAccrual = try container.decodeIfPresent(FailureAccrualConfig.self, forKey: .failureAccrual) ?? failureAccrual
    }
}

/// Per-endpoint circuit breaking: `consecutiveFailures` failed tries in a row (connect failure,
/// reset, timeout, 5xx) trip the endpoint for a penalty from `minPenalty` doubling up to
/// `maxPenalty` (±50% jitter); then one probe request at a time decides whether it is back.
public struct FailureAccrualConfig: Decodable, Sendable {
    public var consecutiveFailures = 7
    public var minPenalty: ConfigDuration = .seconds(1)
    public var maxPenalty: ConfigDuration = .seconds(60)

    enum CodingKeys: String, CodingKey, CaseIterable { case consecutiveFailures, minPenalty, maxPenalty }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        consecutiveFailures = try container.decodeIfPresent(Int.self, forKey: .consecutiveFailures) ?? consecutiveFailures
        minPenalty = try container.decodeIfPresent(ConfigDuration.self, forKey: .minPenalty) ?? minPenalty
        maxPenalty = try container.decodeIfPresent(ConfigDuration.self, forKey: .maxPenalty) ?? maxPenalty
    }

    var policy: FailureAccrual {
        FailureAccrual(consecutiveFailures: max(1, consecutiveFailures), minPenalty: minPenalty.timeAmount,
                       maxPenalty: (maxPenalty.nanoseconds >= minPenalty.nanoseconds ? maxPenalty : minPenalty).timeAmount)
    }
}

/// `host:port` (`127.0.0.1:4143`, `[::1]:80`, `localhost:8080`).
public struct ListenAddress: Codable, Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; nil when the port is missing or out of range.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }

    /// `[host]:port` for IPv6 literals. (A byte scan: `String.contains` with Foundation imported
    /// is a CoreFoundation search, and this runs for every proxied request.)
    public var description: String { host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let parsed = ListenAddress(parsing: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not host:port")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
