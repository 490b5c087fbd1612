import WeftFilter

/// Config of the `header-rewrite` filter.
///
/// ```yaml
/// - name: header-rewrite
///   config:
///     routes: [user-by-id]          # optional: only requests on these routes
///     request:
///       set: { x-user-id: "${id}", x-weft-route: "${route}" }
///       remove: [x-debug]
///     response:
///       set: { x-served-by: weft }
///       remove: [server]
/// ```
///
/// Values are templates: `${name}` is a named capture of the matched route's patterns,
/// `${route}` the route's name and `${backend}` its backend. A header whose template names
/// a variable the request does not have is left alone.
public struct HeaderRewriteConfig: Decodable, Sendable {
    public var routes: [String]?
    public var request: HeaderEdits
    public var response: HeaderEdits

    enum CodingKeys: String, CodingKey, CaseIterable { case routes, request, response }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        routes = try container.decodeIfPresent([String].self, forKey: .routes)
        request = try container.decodeIfPresent(HeaderEdits.self, forKey: .request) ?? HeaderEdits()
        response = try container.decodeIfPresent(HeaderEdits.self, forKey: .response) ?? HeaderEdits()
    }
}

/// Headers to set (replacing any present) and to remove.
public struct HeaderEdits: Decodable, Sendable {
    public var set: [String: String]
    public var remove: [String]

    enum CodingKeys: String, CodingKey, CaseIterable { case set, remove }

    public init() {
        set = [:]
        remove = []
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        set = try container.decodeIfPresent([String: String].self, forKey: .set) ?? [:]
        remove = try container.decodeIfPresent([String].self, forKey: .remove) ?? []
    }
}
