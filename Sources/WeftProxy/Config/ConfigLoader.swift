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

    public init(file: String, line: Int? = nil, field: String, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

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
    public func load(path: String, pushed: PushedConfig? = nil) throws(ConfigError) -> ProxySnapshot {
        try load(text: Self.read(path), file: path, pushed: pushed)
    }

    /// The file's text, or a ``ConfigError`` saying why it cannot be read.
    public static func read(_ path: String) throws(ConfigError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, line: nil, field: "", message: "cannot read the file: \(error.localizedDescription)")
        }
    }

    /// Loads config from YAML text; `file` only names it in errors. With `pushed`, the controller's
    /// snapshot replaces the bootstrap's dynamic keys (filters, backends, upstream); an error in
    /// those keys names the snapshot instead of the file.
    public func load(text: String, file: String = "<config>", pushed: PushedConfig? = nil) throws(ConfigError) -> ProxySnapshot {
        var root = try Self.compose(text, file: file)
        var fileFor: (String) -> String = { _ in file }
        var source = text
        if let pushed {
            let snapshotName = "controller snapshot \(pushed.version)"
            let overlay = try Self.compose(pushed.config, file: snapshotName)
            root = try Self.merge(overlay, into: root, snapshotName: snapshotName)
            fileFor = { field in PushedConfig.owns(field) ? snapshotName : file }
            source = text + "\n# --- controller snapshot \(pushed.version) ---\n" + pushed.config
        }
        do {
            return try load(root: root, source: source, file: file, version: pushed?.version)
        } catch {
            var error = error
            error.file = fileFor(error.field)
            throw error
        }
    }

    private static func compose(_ text: String, file: String) throws(ConfigError) -> Yams.Node {
        do {
            return try Yams.compose(yaml: text) ?? .mapping(Yams.Node.Mapping([]))
        } catch let error as YamlError {
            throw ConfigError(file: file, line: Self.line(of: error), field: "", message: "not valid YAML: \(Self.summary(of: error))")
        } catch {
            throw ConfigError(file: file, line: nil, field: "", message: "not valid YAML: \(error)")
        }
    }

    /// The bootstrap with the snapshot's keys laid over it: `inbound`/`outbound` key by key, the rest whole.
    private static func merge(_ overlay: Yams.Node, into base: Yams.Node, snapshotName: String) throws(ConfigError) -> Yams.Node {
        guard case .mapping(let pushed) = overlay else {
            if case .scalar(let scalar) = overlay, scalar.string.isEmpty || scalar.string == "null" { return base }
            throw ConfigError(file: snapshotName, line: overlay.mark?.line, field: "", message: "a snapshot must be a mapping")
        }
        guard case .mapping(var merged) = base else { return overlay }
        for (key, value) in pushed {
            let name = key.string ?? ""
            guard PushedConfig.topLevelKeys.contains(name) else {
                throw ConfigError(file: snapshotName, line: key.mark?.line, field: name,
                                  message: "the controller may set only \(PushedConfig.topLevelKeys.sorted().joined(separator: ", ")); listeners and identity come from the bootstrap file")
            }
            if name == "inbound" || name == "outbound" {
                guard case .mapping(let fields) = value else {
                    throw ConfigError(file: snapshotName, line: value.mark?.line, field: name, message: "must be a mapping")
                }
                for (field, _) in fields where field.string != "filters" {
                    throw ConfigError(file: snapshotName, line: field.mark?.line, field: "\(name).\(field.string ?? "")",
                                      message: "the controller may set only \(name).filters")
                }
                var listener: Yams.Node.Mapping
                if case .mapping(let existing) = merged[key] ?? .mapping(Yams.Node.Mapping([])) {
                    listener = existing
                } else {
                    listener = Yams.Node.Mapping([])
                }
                for (field, fieldValue) in fields { listener[field] = fieldValue }
                merged[key] = .mapping(listener)
            } else {
                merged[key] = value
            }
        }
        return .mapping(merged)
    }

    private func load(root: Yams.Node, source text: String, file: String, version: String?) throws(ConfigError) -> ProxySnapshot {
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
        return ProxySnapshot(config: config, source: text, version: version, identity: identity, inboundChain: inbound, outboundChain: outbound)
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
        if let controller = config.controller.address, ListenAddress(parsing: controller) == nil {
            throw fail("controller.address", "'\(controller)' is not host:port")
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
    public static func line(_ root: Yams.Node, at path: String) -> Int? {
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
    public static func node(_ root: Yams.Node, at path: String) -> Yams.Node? {
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

/// A snapshot pushed by the controller: the dynamic part of a proxy config, in the file's format.
public struct PushedConfig: Sendable, Equatable {
    public var version: String
    public var config: String

    public init(version: String, config: String) {
        self.version = version
        self.config = config
    }

    /// The keys a snapshot may set; everything else (listeners, identity, the controller's address) is the bootstrap's.
    public static let topLevelKeys: Set<String> = ["inbound", "outbound", "backends", "upstream"]

    /// Whether an error at `field` is about the snapshot's part of the merged config.
    static func owns(_ field: String) -> Bool {
        field.hasPrefix("backends") || field.hasPrefix("upstream") || field.hasPrefix("inbound.filters") || field.hasPrefix("outbound.filters")
    }
}
