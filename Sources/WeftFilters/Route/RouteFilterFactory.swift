import HTTPTypes
import WeftFilter
import WeftRegex
import WeftRouting

/// Builds the `route` filter: validates every route and compiles its patterns (PCRE2 JIT) once.
public struct RouteFilterFactory: FilterFactory {
    public let name = "route"
    /// Bounds for every pattern this filter compiles.
    public var regexLimits: RegexLimits

    public init(regexLimits: RegexLimits = .default) {
        self.regexLimits = regexLimits
    }

    public func makeFilter(config: RouteFilterConfig, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter {
        var entries: [RouteTable<RouteFilter.Target>.Entry] = []
        var seen: Set<String> = []
        for (index, route) in config.routes.enumerated() {
            let field = "routes[\(index)]"
            guard !route.name.isEmpty else {
                throw FilterConfigError(field: "\(field).name", message: "must not be empty")
            }
            guard seen.insert(route.name).inserted else {
                throw FilterConfigError(field: "\(field).name", message: "route name '\(route.name)' is used twice; names label metrics and must be unique")
            }
            guard context.backendNames.contains(route.backend) else {
                let known = context.backendNames.sorted().joined(separator: ", ")
                throw FilterConfigError(field: "\(field).backend", message: "unknown backend '\(route.backend)'; defined backends: \(known.isEmpty ? "none" : known)")
            }
            if route.retryPolicyGiven {
                throw FilterConfigError(field: "\(field).retry", message: "retry policies go in the retry filter's config (policies: [{routes: [\(route.name)], …}]), after this filter")
            }
            let match = try compile(route.match, field: "\(field).match")
            let target = RouteFilter.Target(name: route.name, backend: route.backend, timeout: route.timeout?.timeAmount)
            entries.append(.init(match: match, target: target))
        }
        context.declarations.routeNames += config.routes.map(\.name)
        return RouteFilter(table: RouteTable(entries), onNoMatch: config.onNoMatch)
    }

    private func compile(_ match: RouteMatchConfig, field: String) throws(FilterConfigError) -> RouteMatch {
        var methods: Set<HTTPRequest.Method> = []
        for (index, text) in (match.method?.values ?? []).enumerated() {
            guard let method = HTTPRequest.Method(text.uppercased()) else {
                throw FilterConfigError(field: "\(field).method[\(index)]", message: "'\(text)' is not an HTTP method")
            }
            methods.insert(method)
        }
        var headers: [HeaderMatch] = []
        for (index, header) in match.headers.enumerated() {
            guard let name = HTTPField.Name(header.name) else {
                throw FilterConfigError(field: "\(field).headers[\(index)].name", message: "'\(header.name)' is not a valid header name")
            }
            let value = try header.value.map { value throws(FilterConfigError) in
                try compile(value, field: "\(field).headers[\(index)].value")
            }
            headers.append(HeaderMatch(name: name, value: value))
        }
        return RouteMatch(
            methods: methods,
            authority: try match.authority.map { value throws(FilterConfigError) in try compile(value, field: "\(field).authority") },
            path: try match.path.map { value throws(FilterConfigError) in try compile(value, field: "\(field).path") },
            headers: headers)
    }

    private func compile(_ config: StringMatchConfig, field: String) throws(FilterConfigError) -> StringMatcher {
        switch config {
        case .exact(let value): return .exact(value)
        case .prefix(let value): return .prefix(value)
        case .regex(let pattern):
            do {
                return .regex(try PCRE2Pattern(pattern, limits: regexLimits))
            } catch {
                throw FilterConfigError(field: "\(field).regex", message: error.description)
            }
        }
    }
}
