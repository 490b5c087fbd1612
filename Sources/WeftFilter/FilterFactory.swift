import Yams

/// Builds one kind of filter from its typed config. Registered by ``name`` in a ``FilterRegistry``.
///
/// The factory decodes its own `Config` (from the `config:` mapping of a chain entry) and
/// validates it once, when config is loaded; the filter it returns is shared by every request.
public protocol FilterFactory: Sendable {
    associatedtype Config: Decodable
    /// The stable name config refers to (`route`, `header-rewrite`, …).
    var name: String { get }
    /// Builds the filter; throws ``FilterConfigError`` naming the field when the config is invalid.
    func makeFilter(config: Config, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter
}

/// What a factory may need to know about the rest of the config to validate its own.
public struct FilterBuildContext: Sendable {
    /// The listener the chain serves.
    public var direction: TrafficDirection
    /// Names of the backends defined in the config (routes must name one of them).
    public var backendNames: Set<String>
    /// Who the proxy is (labels metrics and tap events).
    public var identity: ProxyIdentity
    /// What filters earlier in the same chain declared (the route filter's route names), for
    /// later filters to validate against. One per chain being built.
    public let declarations: ChainDeclarations

    public init(direction: TrafficDirection, backendNames: Set<String>, identity: ProxyIdentity = ProxyIdentity(),
                declarations: ChainDeclarations = ChainDeclarations()) {
        self.direction = direction
        self.backendNames = backendNames
        self.identity = identity
        self.declarations = declarations
    }
}

/// Names a filter declares while its chain is built, visible to the filters after it.
/// Chains are built on one thread, once per config version.
public final class ChainDeclarations: @unchecked Sendable {
    /// Route names declared by route filters so far, in order.
    public var routeNames: [String] = []

    public init() {}
}

/// A filter config that is invalid: which filter, which field, what is wrong.
public struct FilterConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The filter's registered name (empty until the registry fills it in).
    public var filter: String
    /// Dotted path of the field inside the filter's `config`, e.g. `routes[2].match.path`.
    public var field: String
    public var message: String
    /// Which entry of a chain failed, when the error comes from building a whole chain.
    public var entryIndex: Int?

    public init(filter: String = "", field: String, message: String) {
        self.filter = filter
        self.field = field
        self.message = message
    }

    public var description: String {
        let location = field.isEmpty ? "" : " field '\(field)'"
        return "filter '\(filter)'\(location): \(message)"
    }
}

/// One entry of a chain in config: a filter name and its config.
public struct FilterSpec {
    public var name: String
    /// The raw `config:` node (an empty mapping when absent).
    public var config: Yams.Node

    public init(name: String, config: Yams.Node = .mapping(Yams.Node.Mapping([]))) {
        self.name = name
        self.config = config
    }
}
