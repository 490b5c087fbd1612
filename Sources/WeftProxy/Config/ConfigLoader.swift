import Foundation
import WeftFilter
import Yams

/// A config that cannot be used: where (file, line, field) and what is wrong, in one line.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    /// Dotted path from the top of the file, e.g. `outbound.filters[0].config.routes[1].backend`.
    public var field: String
    public var message: String

    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return field.isEmpty ? "\(location): \(message)" : "\(location): \(field): \(message)"
    }
}

/// Reads, decodes and validates a proxy config, and builds everything the data plane needs.
public struct ConfigLoader: Sendable {
    public let registry: FilterRegistry

    public init(registry: FilterRegistry) {
        self.registry = registry
    }

    /// Loads `path` into a ready-to-swap snapshot; throws ``ConfigError`` with file, line and field.
    public func load(path: String) throws(ConfigError) -> ProxySnapshot {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, line: nil, field: "", message: "cannot read the file: \(error.localizedDescription)")
        }
        return try load(text: text, file: path)
    }

    /// Loads config from YAML text; `file` only names it in errors.
    public func load(text: String, file: String = "<config>") throws(ConfigError) -> ProxySnapshot {
        let root: Yams.Node
        do {
            root = try Yams.compose(yaml: text) ?? .mapping(Yams.Node.Mapping([]))
        } catch let error as YamlError {
            throw ConfigError(file: file, line: Self.line(of: error), field: "", message: "not valid YAML: \(Self.summary(of: error))")
        } catch {
            throw ConfigError(file: file, line: nil, field: "", message: "not valid YAML: \(error)")
        }
        let config: ProxyConfig
        do {
            config = try YAMLDecoder().decode(ProxyConfig.self, from: root)
        } catch let error as DecodingError {
            let described = FilterConfigError(decoding: error)
            throw ConfigError(file: file, line: Self.line(root, at: described.field), field: described.field, message: described.message)
        } catch {
            throw ConfigError(file: file, line: nil, field: "", message: "\(error)")
        }
        try validate(config, root: root, file: file)

        let identity = config.identity.resolve()
        var backendNames = Set(config.backends.map(\.name))
        let inboundNames = backendNames.union([ProxySnapshot.appBackendName])
        func chain(_ listener: String, _ entries: [FilterEntry]?, direction: TrafficDirection, names: Set<String>) throws(ConfigError) -> FilterChain {
            let context = FilterBuildContext(direction: direction, backendNames: names, identity: identity)
            guard let entries else {
                // The built-ins with empty configs cannot fail.
                let defaults = Self.defaultChain.filter(registry.names.contains).map { FilterSpec(name: $0) }
                return try! registry.makeChain(defaults, context: context)
            }
            let specs = entries.enumerated().map { index, entry in
                FilterSpec(name: entry.name,
                           config: Self.node(root, at: "\(listener).filters[\(index)].config") ?? .mapping(Yams.Node.Mapping([])))
            }
            do {
                return try registry.makeChain(specs, context: context)
            } catch {
                let base = "\(listener).filters[\(error.entryIndex ?? 0)]"
                let field = error.field.isEmpty ? base : "\(base).config.\(error.field)".replacingOccurrences(of: ".config.[", with: ".config[")
                throw ConfigError(file: file, line: Self.line(root, at: field) ?? Self.line(root, at: base),
                                  field: field, message: "filter '\(error.filter)': \(error.message)")
            }
        }
        let inbound = try chain("inbound", config.inbound.filters, direction: .inbound, names: inboundNames)
        backendNames.remove(ProxySnapshot.appBackendName)
        let outbound = try chain("outbound", config.outbound.filters, direction: .outbound, names: backendNames)
        return ProxySnapshot(config: config, source: text, identity: identity, inboundChain: inbound, outboundChain: outbound)
    }

    /// The chain a listener gets when config names none.
    public static let defaultChain = ["protocol-detect", "route", "retry", "metrics", "tap"]

    private func validate(_ config: ProxyConfig, root: Yams.Node, file: String) throws(ConfigError) {
        func fail(_ field: String, _ message: String) -> ConfigError {
            ConfigError(file: file, line: Self.line(root, at: field), field: field, message: message)
        }
        var seen: Set<String> = []
        for (index, backend) in config.backends.enumerated() {
            if backend.name.isEmpty { throw fail("backends[\(index)].name", "must not be empty") }
            if backend.name == ProxySnapshot.appBackendName {
                throw fail("backends[\(index)].name", "'app' is reserved for the local application (set inbound.app instead)")
            }
            if !seen.insert(backend.name).inserted {
                throw fail("backends[\(index)].name", "backend '\(backend.name)' is defined twice")
            }
        }
        for (index, backend) in config.backends.enumerated() {
            if let workload = backend.workload, WorkloadRef(parsing: workload) == nil {
                throw fail("backends[\(index)].workload", "'\(workload)' is not kind/name (e.g. deploy/web)")
            }
        }
        if let workload = config.identity.workload, WorkloadRef(parsing: workload) == nil {
            throw fail("identity.workload", "'\(workload)' is not kind/name (e.g. deploy/web)")
        }
        if config.tap.enabled && !config.tap.allowRemote && !Self.isLoopback(config.tap.address.host) {
            throw fail("tap.address", "\(config.tap.address) is not a loopback address; tap shows live requests, so exposing it needs tap.allowRemote: true")
        }
        if config.upstream.connectTimeout.nanoseconds <= 0 {
            throw fail("upstream.connectTimeout", "must be greater than zero")
        }
        if config.upstream.maxIdlePerEndpoint < 0 {
            throw fail("upstream.maxIdlePerEndpoint", "must not be negative")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }

    /// The line a field is written on: the key's line for a mapping entry, the item's for a list item.
    static func line(_ root: Yams.Node, at path: String) -> Int? {
        if path.hasSuffix("]") { return node(root, at: path)?.mark?.line }
        let parent: Yams.Node?
        let key: String
        if let dot = path.lastIndex(of: ".") {
            parent = node(root, at: String(path[..<dot]))
            key = String(path[path.index(after: dot)...])
        } else {
            parent = root
            key = path
        }
        return parent.flatMap { keyNode(in: $0, named: key) }?.mark?.line ?? node(root, at: path)?.mark?.line
    }

    private static func keyNode(in mapping: Yams.Node, named key: String) -> Yams.Node? {
        guard case .mapping(let pairs) = mapping else { return nil }
        return pairs.first { $0.key.string == key }?.key
    }

    /// The node at a dotted path like `a.b[2].c`, if present.
    static func node(_ root: Yams.Node, at path: String) -> Yams.Node? {
        var current: Yams.Node? = root
        var token = ""
        func step(_ key: String) {
            guard !key.isEmpty else { return }
            current = current?[key]
        }
        var index = path.startIndex
        while index < path.endIndex {
            let character = path[index]
            switch character {
            case ".":
                step(token); token = ""
            case "[":
                step(token); token = ""
                let close = path[index...].firstIndex(of: "]") ?? path.endIndex
                if let position = Int(path[path.index(after: index)..<close]) {
                    current = current?[position]
                }
                index = close
            default:
                token.append(character)
            }
            if index < path.endIndex { index = path.index(after: index) }
        }
        step(token)
        return current
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    private static func summary(of error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _):
            return problem
        default:
            return "\(error)"
        }
    }
}
