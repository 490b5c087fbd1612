import Foundation
import WeftFilter
import WeftProxy
import Yams

/// The mesh file: the file discovery backend's source and `weft up`'s input (see `config/mesh.yaml`).
///
/// ```yaml
/// workloads:
///   - name: web
///     namespace: demo            # default: default
///     kind: deploy               # default: deploy
///     service: web               # the name callers use; default: the workload's name
///     command: python3 web.py    # weft up: how to start the app (a shell line, or a list)
///     replicas: 1                # weft up: how many instances
///     endpoints: [10.0.0.5:4143] # outside weft up: its proxies' inbound addresses
///     outbound: { filters: [...] }   # pushed to its proxies; absent: their default chains
/// ```
public struct MeshFile: Sendable {
    public struct Workload: Sendable {
        public var name: String
        public var namespace: String
        public var kind: String
        public var service: String
        /// `weft up`: the app's command, run by `/bin/sh -c` when written as one line.
        public var command: [String]?
        public var replicas: Int
        /// `weft up`: a fixed app port; nil: a free port, passed as `$PORT`.
        public var port: Int?
        public var endpoints: [ListenAddress]
        public var inboundFilters: YAMLValue?
        public var outboundFilters: YAMLValue?
        /// The item's line in the file.
        public var line: Int?

        public var ref: WorkloadRef { WorkloadRef(kind: kind, name: name) }
    }

    public var path: String
    public var workloads: [Workload]

    /// Reads and validates `path`; the error names file, line and field.
    public static func load(path: String) throws(DiscoveryError) -> MeshFile {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw DiscoveryError(file: path, field: "", message: "cannot read the mesh file: \(error.localizedDescription)")
        }
        return try parse(text, path: path)
    }

    /// Parses the file's text; `readable: false` reports that the file could not be read.
    public static func parse(_ text: String, path: String, readable: Bool = true) throws(DiscoveryError) -> MeshFile {
        guard readable else { throw DiscoveryError(file: path, field: "", message: "cannot read the mesh file") }
        let root: Yams.Node
        do {
            root = try Yams.compose(yaml: text) ?? .mapping(Yams.Node.Mapping([]))
        } catch {
            throw DiscoveryError(file: path, field: "", message: "not valid YAML: \(error)")
        }
        func fail(_ field: String, _ message: String) -> DiscoveryError {
            DiscoveryError(file: path, line: ConfigLoader.line(root, at: field), field: field, message: message)
        }
        let decoded: Document
        do {
            decoded = try YAMLDecoder().decode(Document.self, from: root)
        } catch let error as DecodingError {
            let described = FilterConfigError(decoding: error)
            throw fail(described.field, described.message)
        } catch {
            throw fail("", "\(error)")
        }
        var workloads: [Workload] = []
        var seen: Set<String> = []
        var services: [String: String] = [:]
        for (index, item) in decoded.workloads.enumerated() {
            let field = "workloads[\(index)]"
            guard Self.isName(item.name) else {
                throw fail("\(field).name", "'\(item.name)' is not a name (lower-case letters, digits, '-')")
            }
            let namespace = item.namespace ?? "default"
            guard Self.isName(namespace) else { throw fail("\(field).namespace", "'\(namespace)' is not a name") }
            let kind = WorkloadRef.canonicalKind(item.kind ?? "deploy")
            guard seen.insert("\(namespace)/\(kind)/\(item.name)").inserted else {
                throw fail("\(field).name", "workload \(kind)/\(item.name) in namespace \(namespace) is defined twice")
            }
            let service = item.service ?? item.name
            guard Self.isName(service) else { throw fail("\(field).service", "'\(service)' is not a name") }
            if let other = services.updateValue(item.name, forKey: "\(namespace)/\(service)") {
                throw fail("\(field).service", "service \(service) in namespace \(namespace) is already served by workload \(other)")
            }
            let replicas = item.replicas ?? 1
            guard replicas >= 1 else { throw fail("\(field).replicas", "must be at least 1") }
            if let port = item.port, !(1...65535).contains(port) { throw fail("\(field).port", "\(port) is not a port") }
            if let command = item.command, command.isEmpty || command.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                throw fail("\(field).command", "must not be empty")
            }
            workloads.append(Workload(
                name: item.name, namespace: namespace, kind: kind, service: service, command: item.command,
                replicas: replicas, port: item.port, endpoints: item.endpoints ?? [],
                inboundFilters: ConfigLoader.node(root, at: "\(field).inbound.filters").map(YAMLValue.init),
                outboundFilters: ConfigLoader.node(root, at: "\(field).outbound.filters").map(YAMLValue.init),
                line: ConfigLoader.node(root, at: field)?.mark?.line))
        }
        return MeshFile(path: path, workloads: workloads)
    }

    /// The discovery state, with `endpoints` (by workload index) replacing what the file lists
    /// (`weft up` knows where the proxies it started listen).
    public func state(endpoints overlay: [Int: [ListenAddress]] = [:]) -> MeshState {
        MeshState(workloads: workloads.enumerated().map { index, workload in
            let endpoints = overlay[index] ?? workload.endpoints
            return WorkloadSpec(namespace: workload.namespace, ref: workload.ref, service: workload.service,
                                endpoints: endpoints, replicas: overlay[index] != nil ? workload.replicas : max(endpoints.count, 1),
                                inboundFilters: workload.inboundFilters, outboundFilters: workload.outboundFilters)
        }, source: path)
    }

    static func isName(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 63 && text.allSatisfy { ($0.isLetter && $0.isLowercase) || $0.isNumber || $0 == "-" }
            && text.first != "-" && text.last != "-"
    }

    // MARK: Decoding

    private struct Document: Decodable {
        var workloads: [Item]
        enum CodingKeys: String, CodingKey, CaseIterable { case workloads }
        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            workloads = try container.decodeIfPresent([Item].self, forKey: .workloads) ?? []
        }
    }

    private struct Item: Decodable {
        var name: String
        var namespace: String?
        var kind: String?
        var service: String?
        var command: [String]?
        var replicas: Int?
        var port: Int?
        var endpoints: [ListenAddress]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, namespace, kind, service, command, replicas, port, endpoints, inbound, outbound
        }

        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            namespace = try container.decodeIfPresent(String.self, forKey: .namespace)
            kind = try container.decodeIfPresent(String.self, forKey: .kind)
            service = try container.decodeIfPresent(String.self, forKey: .service)
            if let line = try? container.decodeIfPresent(String.self, forKey: .command) {
                command = ["/bin/sh", "-c", line]
            } else {
                command = try container.decodeIfPresent([String].self, forKey: .command)
            }
            replicas = try container.decodeIfPresent(Int.self, forKey: .replicas)
            port = try container.decodeIfPresent(Int.self, forKey: .port)
            endpoints = try container.decodeIfPresent([ListenAddress].self, forKey: .endpoints)
            _ = try container.decodeIfPresent(ListenerSection.self, forKey: .inbound)
            _ = try container.decodeIfPresent(ListenerSection.self, forKey: .outbound)
        }
    }

    /// `inbound`/`outbound`: only `filters`, a list of `{name, config}` (each config is checked by
    /// the controller's validation of the rendered snapshot).
    private struct ListenerSection: Decodable {
        enum CodingKeys: String, CodingKey, CaseIterable { case filters }
        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            _ = try container.decode([FilterEntry].self, forKey: .filters)
        }
    }
}
