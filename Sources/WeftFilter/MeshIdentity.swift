/// A workload, `kind/name` (`deployment/web`). Short kinds (`deploy`, `sts`, `ds`, `po`) are
/// accepted and stored in their long form, so `deploy/web` and `deployment/web` are the same.
public struct WorkloadRef: Sendable, Hashable, CustomStringConvertible {
    /// The long kind: `deployment`, `statefulset`, `daemonset`, `job`, `pod`, or as written.
    public var kind: String
    public var name: String

    public init(kind: String, name: String) {
        self.kind = Self.canonicalKind(kind)
        self.name = name
    }

    /// Parses `kind/name`; a bare `name` is a deployment. Nil for an empty name.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2 {
            guard !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
            self.init(kind: String(parts[0]), name: String(parts[1]))
        } else {
            guard !text.isEmpty else { return nil }
            self.init(kind: "deployment", name: text)
        }
    }

    public var description: String { "\(kind)/\(name)" }

    /// The long form of a kubectl-style kind.
    public static func canonicalKind(_ kind: String) -> String {
        switch kind.lowercased() {
        case "deploy", "deployment", "deployments": return "deployment"
        case "sts", "statefulset", "statefulsets": return "statefulset"
        case "ds", "daemonset", "daemonsets": return "daemonset"
        case "job", "jobs": return "job"
        case "po", "pod", "pods": return "pod"
        default: return kind.lowercased()
        }
    }
}

/// Who a proxy is: the labels every metric it exports carries and tap reports.
public struct ProxyIdentity: Sendable, Hashable {
    public var namespace: String
    /// The workload the proxy's app belongs to, if known.
    public var workload: WorkloadRef?
    /// This proxy's instance (the pod name in Kubernetes).
    public var instance: String

    public init(namespace: String = "default", workload: WorkloadRef? = nil, instance: String = "") {
        self.namespace = namespace
        self.workload = workload
        self.instance = instance
    }
}

/// A named service the proxy sends to, and who serves it when config says so.
public struct ServiceIdentity: Sendable, Hashable {
    /// The backend's name in config (the service).
    public var service: String
    public var namespace: String?
    public var workload: WorkloadRef?

    public init(service: String, namespace: String? = nil, workload: WorkloadRef? = nil) {
        self.service = service
        self.namespace = namespace
        self.workload = workload
    }
}

/// Where the proxy sent a request, once the request filters ran and an endpoint was chosen.
public struct UpstreamTarget: Sendable, Equatable {
    /// The endpoint, `host:port`.
    public var endpoint: String
    /// The named backend, when the request went to one (not for plain pass-through by authority).
    public var service: ServiceIdentity?

    public init(endpoint: String, service: ServiceIdentity? = nil) {
        self.endpoint = endpoint
        self.service = service
    }
}
