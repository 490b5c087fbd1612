import WeftFilter

/// A kind of resource stat and tap understand, written kubectl-style.
public enum ResourceKind: Sendable, Equatable, Codable {
    /// A workload kind, canonical (`deployment`, `statefulset`, …); its metric label has the same name.
    case workload(String)
    case pod
    case service
    case namespace

    /// Parses `deploy`, `deployment`, `sts`, `po`, `pods`, `svc`, `ns`, …
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "po", "pod", "pods": self = .pod
        case "svc", "service", "services": self = .service
        case "ns", "namespace", "namespaces": self = .namespace
        case "deploy", "deployment", "deployments", "sts", "statefulset", "statefulsets", "ds", "daemonset", "daemonsets",
             "job", "jobs", "rs", "replicaset", "replicasets", "cronjob", "cronjobs":
            var singular = text.lowercased()
            if singular.hasSuffix("s") && singular.count > 3 && singular != "ds" && singular != "rs" { singular.removeLast() }
            self = .workload(WorkloadRef.canonicalKind(singular))
        default: return nil
        }
    }

    /// How the kind is written in output (`deploy`, `po`, `svc`, `ns`).
    public var shortName: String {
        switch self {
        case .workload(let kind):
            switch kind {
            case "deployment": return "deploy"
            case "statefulset": return "sts"
            case "daemonset": return "ds"
            default: return kind
            }
        case .pod: return "po"
        case .service: return "svc"
        case .namespace: return "ns"
        }
    }

    public static let help = "deploy (or another workload kind), po, svc, ns"
}

/// `kind/name` (e.g. `deploy/web`), optionally in a namespace; a bare kind means all of that kind.
public struct ResourceRef: Sendable, Equatable, Codable, CustomStringConvertible {
    public var kind: ResourceKind
    public var name: String?
    /// nil: any namespace.
    public var namespace: String?

    public init(kind: ResourceKind, name: String?, namespace: String?) {
        self.kind = kind
        self.name = name
        self.namespace = namespace
    }

    /// Parses `kind/name` or `kind`; throws a message naming the accepted kinds.
    public init(parsing text: String, namespace: String?) throws(StatError) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let kindText = parts.first, let kind = ResourceKind(parsing: kindText) else {
            throw StatError.badRequest("'\(text)' is not a resource: write KIND or KIND/NAME, KIND one of \(ResourceKind.help)")
        }
        let name = parts.count == 2 ? parts[1] : nil
        if let name, name.isEmpty { throw StatError.badRequest("'\(text)' has no name after the '/'") }
        self.init(kind: kind, name: name, namespace: kind == .namespace ? nil : namespace)
    }

    public var description: String { name.map { "\(kind.shortName)/\($0)" } ?? kind.shortName }
}

/// A stat or tap request that cannot be answered, in words a user can act on.
public enum StatError: Error, Sendable, CustomStringConvertible {
    case badRequest(String)
    case notFound(String)
    case prometheus(String)

    public var description: String {
        switch self {
        case .badRequest(let message), .notFound(let message), .prometheus(let message): return message
        }
    }
}
