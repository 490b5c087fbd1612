import Foundation
import Yams

/// Maps stable filter names to factories. Swift has no static constructors, so filters are
/// registered explicitly: built-ins by `WeftFilters`, custom filters by the proxy's main.
public struct FilterRegistry: Sendable {
    private var builders: [String: any ErasedFactory] = [:]
    private var connectionBuilders: [String: any ErasedConnectionFactory] = [:]

    public init() {}

    /// The registered names, sorted.
    public var names: [String] { (Array(builders.keys) + Array(connectionBuilders.keys)).sorted() }

    /// Registers `factory` under its name, replacing any earlier factory of that name.
    public mutating func register<Factory: FilterFactory>(_ factory: Factory) {
        connectionBuilders[factory.name] = nil
        builders[factory.name] = TypedFactory(factory: factory)
    }

    /// Registers a connection-level filter factory under its name.
    public mutating func register<Factory: ConnectionFilterFactory>(connection factory: Factory) {
        builders[factory.name] = nil
        connectionBuilders[factory.name] = TypedConnectionFactory(factory: factory)
    }

    /// Whether `name` is a connection-level filter.
    public func isConnectionFilter(_ name: String) -> Bool {
        connectionBuilders[name] != nil
    }

    /// Builds one connection-level filter from its spec.
    public func makeConnectionFilter(_ spec: FilterSpec, context: FilterBuildContext) throws(FilterConfigError) -> any ConnectionFilter {
        guard let factory = connectionBuilders[spec.name] else {
            throw FilterConfigError(filter: spec.name, field: "", message: "not a connection-level filter")
        }
        return try naming(spec.name) { () throws(FilterConfigError) in try factory.build(from: spec.config, context: context) }
    }

    /// Runs `build`, putting the filter's name on any error it throws.
    private func naming<Built>(_ name: String, _ build: () throws(FilterConfigError) -> Built) throws(FilterConfigError) -> Built {
        do {
            return try build()
        } catch {
            var named = error
            named.filter = name
            throw named
        }
    }

    /// Builds one filter from its spec.
    public func makeFilter(_ spec: FilterSpec, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter {
        guard let factory = builders[spec.name] else {
            let known = names.joined(separator: ", ")
            throw FilterConfigError(filter: spec.name, field: "", message: "unknown filter; registered filters are: \(known)")
        }
        return try naming(spec.name) { () throws(FilterConfigError) in try factory.build(from: spec.config, context: context) }
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
                if isConnectionFilter(spec.name) {
                    guard connectionFilter == nil, filters.isEmpty else {
                        throw FilterConfigError(filter: spec.name, field: "",
                                                message: "a chain has one connection-level filter, first in the list")
                    }
                    connectionFilter = try makeConnectionFilter(spec, context: context)
                    connectionFilterName = spec.name
                } else {
                    filters.append(try makeFilter(spec, context: context))
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
}

/// A factory seen through its name only: decodes its typed config from YAML, then builds.
protocol ErasedFactory: Sendable {
    func build(from node: Yams.Node, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter
}

struct TypedFactory<Factory: FilterFactory>: ErasedFactory {
    let factory: Factory

    func build(from node: Yams.Node, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter {
        try factory.makeFilter(config: try decodeConfig(Factory.Config.self, from: node), context: context)
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

/// A connection filter factory seen through its name only.
protocol ErasedConnectionFactory: Sendable {
    func build(from node: Yams.Node, context: FilterBuildContext) throws(FilterConfigError) -> any ConnectionFilter
}

struct TypedConnectionFactory<Factory: ConnectionFilterFactory>: ErasedConnectionFactory {
    let factory: Factory

    func build(from node: Yams.Node, context: FilterBuildContext) throws(FilterConfigError) -> any ConnectionFilter {
        try factory.makeConnectionFilter(config: try decodeConfig(Factory.Config.self, from: node), context: context)
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
