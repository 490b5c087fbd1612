import HTTPTypes
import WeftRegex

/// The conditions of one route. Every condition present must hold; absent ones match anything.
public struct RouteMatch: Sendable {
    /// Allowed methods; empty allows all.
    public var methods: Set<HTTPRequest.Method>
    /// Matched against the authority's host (port and case ignored for exact matches).
    public var authority: StringMatcher?
    /// Matched against the path without its query string.
    public var path: StringMatcher?
    /// Header conditions, all of which must hold.
    public var headers: [HeaderMatch]

    public init(methods: Set<HTTPRequest.Method> = [], authority: StringMatcher? = nil, path: StringMatcher? = nil, headers: [HeaderMatch] = []) {
        self.methods = methods
        self.authority = authority.map(Self.lowercasedExact)
        self.path = path
        self.headers = headers
    }

    private static func lowercasedExact(_ matcher: StringMatcher) -> StringMatcher {
        if case .exact(let host) = matcher { return .exact(host.lowercased()) }
        return matcher
    }

    /// Whether `request` satisfies every condition.
    @inlinable
    public func matches(_ request: RequestView, scratch: MatchScratch) -> Bool {
        if !methods.isEmpty && !methods.contains(request.method) { return false }
        if let path, !path.matches(request.path, scratch: scratch) { return false }
        if let authority, !authority.matches(request.host, scratch: scratch) { return false }
        for header in headers where !header.matches(request.headerFields, scratch: scratch) {
            return false
        }
        return true
    }

    /// Named captures from every regex condition (path wins over authority over headers on a clash).
    public func captures(_ request: RequestView, scratch: MatchScratch) -> [String: String] {
        var result: [String: String] = [:]
        for header in headers.reversed() {
            if let value = request.headerFields[header.name] {
                result.merge(header.value?.captures(value[...], scratch: scratch) ?? [:]) { _, new in new }
            }
        }
        if let authority { result.merge(authority.captures(request.host, scratch: scratch)) { _, new in new } }
        if let path { result.merge(path.captures(request.path, scratch: scratch)) { _, new in new } }
        return result
    }
}

/// A condition on one header: present, or with a value that matches.
public struct HeaderMatch: Sendable {
    public var name: HTTPField.Name
    /// `nil` means the header only has to be present.
    public var value: StringMatcher?

    public init(name: HTTPField.Name, value: StringMatcher?) {
        self.name = name
        self.value = value
    }

    @inlinable
    public func matches(_ fields: HTTPFields, scratch: MatchScratch) -> Bool {
        guard let actual = fields[name] else { return false }
        guard let value else { return true }
        return value.matches(actual[...], scratch: scratch)
    }
}

/// The parts of a request routes look at, split once per request.
public struct RequestView {
    public var method: HTTPRequest.Method
    /// The authority's host, lowercased, without port.
    public var host: Substring
    /// The path without query.
    public var path: Substring
    public var headerFields: HTTPFields

    @inlinable
    public init(_ request: HTTPRequest) {
        self.method = request.method
        self.host = RequestView.host(of: request.authority ?? "")
        let fullPath = request.path ?? "/"
        // Scanning UTF-8 bytes, not Characters: no grapheme breaking on the hot path.
        if let query = fullPath.utf8.firstIndex(of: UInt8(ascii: "?")) {
            self.path = fullPath[..<query]
        } else {
            self.path = fullPath[...]
        }
        self.headerFields = request.headerFields
    }

    /// The host part of an authority (`[::1]:80` → `[::1]`, `Example.com:8080` → `example.com`).
    @inlinable
    public static func host(of authority: String) -> Substring {
        let bytes = authority.utf8
        var end = bytes.endIndex
        if bytes.first == UInt8(ascii: "[") {
            if let close = bytes.firstIndex(of: UInt8(ascii: "]")) { end = bytes.index(after: close) }
        } else if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
            end = colon
        }
        let host = authority[..<end]
        if host.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) {
            return host.lowercased()[...]
        }
        return host
    }
}
