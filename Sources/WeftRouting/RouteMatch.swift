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

    /// The parts of a request these conditions read.
    public var parts: RequestView.Parts {
        var parts: RequestView.Parts = []
        if !methods.isEmpty { parts.insert(.method) }
        if authority != nil { parts.insert(.host) }
        if !headers.isEmpty { parts.insert(.headers) }
        return parts
    }

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
        match(request, scratch: scratch) != nil
    }

    /// Nil unless `request` satisfies every condition; then the named captures of its regex
    /// conditions (path wins over authority over headers on a clash). Each regex runs once, and a
    /// route without named groups allocates nothing.
    @inlinable
    public func match(_ request: RequestView, scratch: MatchScratch) -> [String: String]? {
        if !methods.isEmpty && !methods.contains(request.method) { return nil }
        var captures: [String: String] = [:]
        if let path {
            guard let found = path.match(request.path, scratch: scratch) else { return nil }
            captures = found
        }
        if let authority {
            guard let found = authority.match(request.host, scratch: scratch) else { return nil }
            if !found.isEmpty { captures.merge(found) { earlier, _ in earlier } }
        }
        for header in headers {
            guard let found = header.match(request.headerFields, scratch: scratch) else { return nil }
            if !found.isEmpty { captures.merge(found) { earlier, _ in earlier } }
        }
        return captures
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
        match(fields, scratch: scratch) != nil
    }

    /// Nil unless the header holds; then its value's named captures.
    @inlinable
    public func match(_ fields: HTTPFields, scratch: MatchScratch) -> [String: String]? {
        guard let actual = fields[name] else { return nil }
        guard let value else { return [:] }
        return value.match(actual[...], scratch: scratch)
    }
}

/// The parts of a request routes look at, split once per request.
public struct RequestView {
    /// Which parts to take from the request (reading a pseudo-header or splitting the host costs
    /// more than a path-only route table's whole match).
    public struct Parts: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let method = Parts(rawValue: 1)
        public static let host = Parts(rawValue: 2)
        public static let headers = Parts(rawValue: 4)
        public static let all: Parts = [.method, .host, .headers]
    }

    /// The method (`GET` when `.method` was not asked for).
    public var method: HTTPRequest.Method
    /// The authority's host, lowercased, without port (empty when `.host` was not asked for).
    public var host: Substring
    /// The path without query.
    public var path: Substring
    /// The header fields (empty when `.headers` was not asked for).
    public var headerFields: HTTPFields

    @inlinable
    public init(_ request: HTTPRequest, parts: Parts = .all) {
        self.method = parts.contains(.method) ? request.method : .get
        self.host = parts.contains(.host) ? RequestView.host(of: request.authority ?? "") : ""
        let fullPath = request.path ?? "/"
        // Scanning the UTF-8 bytes in place, not Characters: no grapheme breaking on the hot path.
        let query = fullPath.utf8.withContiguousStorageIfAvailable { $0.firstIndex(of: UInt8(ascii: "?")) }
            ?? fullPath.utf8.firstIndex(of: UInt8(ascii: "?")).map { fullPath.utf8.distance(from: fullPath.utf8.startIndex, to: $0) }
        if let query {
            self.path = Substring(fullPath.utf8.prefix(query))
        } else {
            self.path = fullPath[...]
        }
        self.headerFields = parts.contains(.headers) ? request.headerFields : HTTPFields()
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
