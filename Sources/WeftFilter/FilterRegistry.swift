import Foundation
import Yams

/// Maps stable filter names to factories. Swift has no static constructors, so filters are
/// registered explicitly: built-ins by `WeftFilters`, custom filters by the proxy's main.
public struct FilterRegistry: Sendable {
    private var factories: [String: any ErasedFactory] = [:]

    public init() {}

    /// The registered names, sorted.
    public var names: [String] { factories.keys.sorted() }

    /// Registers `factory` under its name, replacing any earlier factory of that name.
    public mutating func register<Factory: FilterFactory>(_ factory: Factory) {
        factories[factory.name] = RequestLevel(factory: factory)
    }

    /// Registers a connection-level filter factory under its name.
    public mutating func register<Factory: ConnectionFilterFactory>(connection factory: Factory) {
        factories[factory.name] = ConnectionLevel(factory: factory)
    }

    /// Whether `name` is a connection-level filter.
    public func isConnectionFilter(_ name: String) -> Bool {
        factories[name]?.isConnectionLevel == true
    }

    /// Builds one request-level filter from its spec.
    public func makeFilter(_ spec: FilterSpec, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter {
        guard case .request(let filter) = try build(spec, context: context) else {
            throw FilterConfigError(filter: spec.name, field: "", message: "is a connection-level filter")
        }
        return filter
    }

    /// Builds one connection-level filter from its spec.
    public func makeConnectionFilter(_ spec: FilterSpec, context: FilterBuildContext) throws(FilterConfigError) -> any ConnectionFilter {
        guard case .connection(let filter) = try build(spec, context: context) else {
            throw FilterConfigError(filter: spec.name, field: "", message: "not a connection-level filter")
        }
        return filter
    }

    /// Builds a whole chain, in order. Done once per config version, never per request.
    /// Connection-level filters are set apart; the request-level ones form the chain. An error
    /// carries the index of the entry that caused it (``FilterConfigError/entryIndex``).
    public func makeChain(_ specs: [FilterSpec], context: FilterBuildContext) throws(FilterConfigError) -> FilterChain {
        var filters: [any HTTPFilter] = []
        var names: [String] = []
        var connectionFilter: (any ConnectionFilter)?
        var connectionFilterName: String?
        for (index, spec) in specs.enumerated() {
            do throws(FilterConfigError) {
                switch try build(spec, context: context) {
                case .connection(let filter):
                    guard connectionFilter == nil, filters.isEmpty else {
                        throw FilterConfigError(filter: spec.name, field: "",
                                                message: "a chain has one connection-level filter, first in the list")
                    }
                    connectionFilter = filter
                    connectionFilterName = spec.name
                case .request(let filter):
                    filters.append(filter)
                    names.append(spec.name)
                }
            } catch {
                var located = error
                located.entryIndex = index
                throw located
            }
        }
        return FilterChain(names: names, filters: filters, connectionFilter: connectionFilter, connectionFilterName: connectionFilterName)
    }

    /// Looks the factory up and builds; every error carries the filter's name.
    private func build(_ spec: FilterSpec, context: FilterBuildContext) throws(FilterConfigError) -> BuiltFilter {
        guard let factory = factories[spec.name] else {
            let known = names.joined(separator: ", ")
            throw FilterConfigError(filter: spec.name, field: "", message: "unknown filter; registered filters are: \(known)")
        }
        do {
            return try factory.build(from: spec.config, context: context)
        } catch {
            var named = error
            named.filter = spec.name
            throw named
        }
    }
}

/// A filter of either level, as a factory built it.
enum BuiltFilter {
    case request(any HTTPFilter)
    case connection(any ConnectionFilter)
}

/// A factory seen through its name only: decodes its typed config from YAML, then builds.
protocol ErasedFactory: Sendable {
    var isConnectionLevel: Bool { get }
    func build(from node: Yams.Node, context: FilterBuildContext) throws(FilterConfigError) -> BuiltFilter
}

struct RequestLevel<Factory: FilterFactory>: ErasedFactory {
    let factory: Factory
    var isConnectionLevel: Bool { false }

    func build(from node: Yams.Node, context: FilterBuildContext) throws(FilterConfigError) -> BuiltFilter {
        .request(try factory.makeFilter(config: try decodeConfig(Factory.Config.self, from: node), context: context))
    }
}

struct ConnectionLevel<Factory: ConnectionFilterFactory>: ErasedFactory {
    let factory: Factory
    var isConnectionLevel: Bool { true }

    func build(from node: Yams.Node, context: FilterBuildContext) throws(FilterConfigError) -> BuiltFilter {
        .connection(try factory.makeConnectionFilter(config: try decodeConfig(Factory.Config.self, from: node), context: context))
    }
}

/// Decodes a filter's typed config from its `config:` node; errors name the field.
func decodeConfig<Config: Decodable>(_ type: Config.Type, from node: Yams.Node) throws(FilterConfigError) -> Config {
    do {
        return try YAMLDecoder().decode(Config.self, from: node)
    } catch let error as DecodingError {
        throw FilterConfigError(decoding: error)
    } catch {
        throw FilterConfigError(field: "", message: "\(error)")
    }
}

extension FilterConfigError {
    /// Turns a decoding error into the field path and a short message.
    public init(decoding error: DecodingError) {
        func path(_ codingPath: [any CodingKey]) -> String {
            var result = ""
            for key in codingPath {
                if let index = key.intValue {
                    result += "[\(index)]"
                } else {
                    result += result.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return result
        }
        switch error {
        case .keyNotFound(let key, let context):
            self.init(field: path(context.codingPath + [key]), message: "is required")
        case .typeMismatch(let type, let context):
            self.init(field: path(context.codingPath), message: "expected \(Self.describe(type)); \(context.debugDescription)")
        case .valueNotFound(let type, let context):
            self.init(field: path(context.codingPath), message: "expected \(Self.describe(type)), found nothing")
        case .dataCorrupted(let context):
            let message = (context.underlyingError as? CustomStringConvertible)?.description ?? context.debugDescription
            self.init(field: path(context.codingPath), message: message)
        @unknown default:
            self.init(field: "", message: "\(error)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type, is UInt32.Type: return "an integer"
        case is Bool.Type: return "true or false"
        case is Double.Type: return "a number"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "a mapping" }
            return name
        }
    }
}
