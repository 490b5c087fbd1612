import WeftFilter
import WeftProxy
import Yams

/// A proxy's config as the controller sends it: the dynamic keys of a proxy config file.
public struct RenderedSnapshot: Sendable, Equatable {
    /// A hash of `config`: the same content always has the same version, across controller restarts.
    public var version: String
    public var config: String
}

/// Turns the mesh state into each proxy's snapshot, and validates a state before it is used.
public struct SnapshotRenderer: Sendable {
    /// The filters the controller can check; other names pass through to proxies (which NACK what they lack).
    public let registry: FilterRegistry

    public init(registry: FilterRegistry) {
        self.registry = registry
    }

    /// The snapshot for proxies of `workload` in `namespace`: its chains (when the mesh file sets
    /// them) and every service as a backend, named `service.namespace` and, within the proxy's
    /// namespace, plain `service` (the authority host an app uses, e.g. `http://voting/`).
    public func render(_ state: MeshState, namespace: String, workload: WorkloadRef?) -> RenderedSnapshot {
        render(state, for: state.workload(namespace: namespace, ref: workload), namespace: namespace)
    }

    private func render(_ state: MeshState, for spec: WorkloadSpec?, namespace: String, keepFilter: (String) -> Bool = { _ in true },
                        backends: String? = nil) -> RenderedSnapshot {
        var listeners: [(Node, Node)] = []
        func listener(_ key: String, _ filters: Node?) {
            guard let filters else { return }
            var kept = filters
            if case .sequence(let items) = filters {
                kept = .sequence(Node.Sequence(items.filter { keepFilter($0["name"]?.string ?? "") }))
            }
            listeners.append((Node(key), .mapping(Node.Mapping([(Node("filters"), kept)]))))
        }
        listener("inbound", spec?.inboundFilters?.node)
        listener("outbound", spec?.outboundFilters?.node)
        var text = listeners.isEmpty ? "" : ((try? Yams.serialize(node: .mapping(Node.Mapping(listeners)))) ?? "")
        text += backends ?? Self.backends(state, namespace: namespace)
        return RenderedSnapshot(version: Self.version(of: text), config: text)
    }

    /// The `backends` section for proxies in `namespace`: the same for all of them, so written once
    /// per namespace. Names, namespaces and kinds are validated as `[a-z0-9-]`, endpoints as host:port.
    static func backends(_ state: MeshState, namespace: String) -> String {
        var text = "backends:\n"
        let services = state.workloads.sorted { ($0.namespace, $0.service) < ($1.namespace, $1.service) }
        for service in services {
            var names = ["\(service.service).\(service.namespace)"]
            if service.namespace == namespace { names.insert(service.service, at: 0) }
            let endpoints = service.endpoints.map { "'\($0.description)'" }.joined(separator: ", ")
            for name in names {
                text += "- {name: '\(name)', service: '\(service.service)', namespace: '\(service.namespace)', workload: '\(service.ref.description)', endpoints: [\(endpoints)]}\n"
            }
        }
        return text
    }

    /// Checks every workload's snapshot as its proxies would load it (filters the controller does
    /// not have are skipped and reported as warnings). Throws the first error, with the mesh file's line.
    public func validate(_ state: MeshState) throws(DiscoveryError) -> [String] {
        let loader = ConfigLoader(registry: registry)
        var warnings: [String] = []
        let known = Set(registry.names)
        // Workloads whose snapshots are the same text (same namespace, same chains) are checked once.
        var checked: Set<String> = []
        var backendsByNamespace: [String: String] = [:]
        for (index, spec) in state.workloads.enumerated() {
            for (key, filters) in [("inbound", spec.inboundFilters?.node), ("outbound", spec.outboundFilters?.node)] {
                guard case .sequence(let items) = filters else { continue }
                for item in items {
                    let name = item["name"]?.string ?? ""
                    if !known.contains(name) {
                        warnings.append("\(state.source):\(item.mark?.line ?? 0): workloads[\(index)].\(key).filters: filter '\(name)' is not compiled into the controller, so it is not checked here; proxies without it will reject (NACK) the snapshot")
                    }
                }
            }
            let backends = backendsByNamespace[spec.namespace] ?? Self.backends(state, namespace: spec.namespace)
            backendsByNamespace[spec.namespace] = backends
            let snapshot = render(state, for: spec, namespace: spec.namespace, keepFilter: known.contains, backends: backends)
            guard checked.insert(snapshot.version).inserted else { continue }
            do {
                _ = try loader.load(text: "{}", file: "<bootstrap>", pushed: PushedConfig(version: snapshot.version, config: snapshot.config))
            } catch {
                var line: Int?
                for key in ["inbound", "outbound"] where error.field.hasPrefix("\(key).filters") {
                    let filters = key == "inbound" ? spec.inboundFilters?.node : spec.outboundFilters?.node
                    let inner = String(error.field.dropFirst("\(key).filters".count))
                    if let filters {
                        line = inner.isEmpty ? filters.mark?.line : (ConfigLoader.node(filters, at: inner)?.mark?.line ?? filters.mark?.line)
                    }
                }
                throw DiscoveryError(file: state.source, line: line, field: "workloads[\(index)].\(error.field)", message: error.message)
            }
        }
        return warnings
    }

    /// The version of a snapshot: the same hash proxies give their own config files.
    static func version(of text: String) -> String {
        ProxySnapshot.hash(text)
    }
}
