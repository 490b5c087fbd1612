import HTTPTypes
import WeftRegex

/// Routes in precedence order: the first route whose match holds wins (config order).
///
/// Pure: no I/O, compiled once per config, safe to share between event loops.
///
/// Indexed by the first path segment: a route whose path condition pins it (an exact path, a
/// prefix or an anchored regex that starts with `/segment/…`) is only tried for requests in that
/// segment, so a long table costs one dictionary lookup plus the routes that can match, not a
/// regex per route. Routes without such a condition are tried for every request, and the
/// candidates are tried in config order, so the first match still wins.
public struct RouteTable<Target: Sendable>: Sendable {
    public struct Entry: Sendable {
        public var match: RouteMatch
        public var target: Target

        public init(match: RouteMatch, target: Target) {
            self.match = match
            self.target = target
        }
    }

    public let entries: [Entry]
    /// Indices of the routes pinned to a first path segment, by that segment, ascending.
    @usableFromInline let bySegment: [String: [Int]]
    /// Indices of the routes any path may match, ascending.
    @usableFromInline let unindexed: [Int]
    /// The parts of a request any route reads.
    @usableFromInline let parts: RequestView.Parts

    /// Below this many routes a plain scan is cheaper than the index's lookup.
    static var indexThreshold: Int { 8 }

    public init(_ entries: [Entry]) {
        self.entries = entries
        var bySegment: [String: [Int]] = [:]
        var unindexed: [Int] = []
        for (index, entry) in entries.enumerated() {
            if entries.count >= Self.indexThreshold, let segment = Self.pinnedSegment(entry.match.path) {
                bySegment[segment, default: []].append(index)
            } else {
                unindexed.append(index)
            }
        }
        self.bySegment = bySegment
        self.unindexed = unindexed
        self.parts = entries.reduce(into: []) { $0.formUnion($1.match.parts) }
    }

    /// The first matching route, its index and its named captures. Inlinable so that callers get a
    /// version specialized for their `Target` (an unspecialized generic loop allocates per route).
    @inlinable
    public func find(_ request: HTTPRequest, scratch: MatchScratch) -> (index: Int, target: Target, captures: [String: String])? {
        guard !entries.isEmpty else { return nil }
        let view = RequestView(request, parts: parts)
        let pinned: [Int] = bySegment.isEmpty ? [] : (Self.firstSegmentKey(of: view.path).flatMap { bySegment[$0] } ?? [])
        // Both lists ascend: merging them tries candidates in config order.
        var p = 0, u = 0
        while p < pinned.count || u < unindexed.count {
            let index: Int
            if u >= unindexed.count || (p < pinned.count && pinned[p] < unindexed[u]) {
                index = pinned[p]
                p += 1
            } else {
                index = unindexed[u]
                u += 1
            }
            if let captures = entries[index].match.match(view, scratch: scratch) {
                return (index, entries[index].target, captures)
            }
        }
        return nil
    }

    /// The first segment of a path as an index key, read from its bytes in place (a segment of up
    /// to 15 bytes is a small string: no allocation); nil unless the path starts with `/`.
    @inlinable
    static func firstSegmentKey(of path: Substring) -> String? {
        let inPlace = path.utf8.withContiguousStorageIfAvailable { bytes -> String? in
            guard bytes.first == UInt8(ascii: "/") else { return nil }
            let rest = UnsafeBufferPointer(rebasing: bytes[1...])
            let end = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
            return String(decoding: UnsafeBufferPointer(rebasing: rest[..<end]), as: UTF8.self)
        }
        if let inPlace { return inPlace }
        return firstSegment(of: path).map(String.init)
    }

    /// The first segment of a path (`/users/7` → `users`, `/` → empty); nil unless it starts with `/`.
    @inlinable
    static func firstSegment(of path: Substring) -> Substring? {
        let bytes = path.utf8
        guard bytes.first == UInt8(ascii: "/") else { return nil }
        let start = bytes.index(after: bytes.startIndex)
        let end = bytes[start...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.endIndex
        return path[start..<end]
    }

    /// The first path segment every path this condition accepts has, when the condition pins it.
    static func pinnedSegment(_ matcher: StringMatcher?) -> String? {
        let literal: Substring
        let wholeValue: Bool
        switch matcher {
        case nil:
            return nil
        case .exact(let value):
            (literal, wholeValue) = (value[...], true)
        case .prefix(let value):
            (literal, wholeValue) = (value[...], false)
        case .regex(let pattern):
            guard pattern.anchoring == .fullValue else { return nil }
            (literal, wholeValue) = (literalPrefix(of: pattern.pattern)[...], false)
        }
        guard let segment = firstSegment(of: literal) else { return nil }
        // The segment is pinned only if the literal goes past it (a `/`) or is the whole value.
        if segment.endIndex < literal.endIndex || wholeValue { return String(segment) }
        return nil
    }

    /// The literal text every match of a start-anchored `pattern` begins with: its leading
    /// characters up to the first metacharacter, minus one made optional or repeatable by a
    /// quantifier; empty when the pattern has a top-level alternation.
    static func literalPrefix(of pattern: String) -> String {
        let scalars = Array(pattern.unicodeScalars)
        if hasTopLevelAlternation(scalars) { return "" }
        let meta: Set<Unicode.Scalar> = ["\\", "^", "$", ".", "|", "?", "*", "+", "(", ")", "[", "]", "{", "}"]
        let quantifiers: Set<Unicode.Scalar> = ["?", "*", "+", "{"]
        var literal = String.UnicodeScalarView()
        for (offset, scalar) in scalars.enumerated() {
            if meta.contains(scalar) { break }
            if offset + 1 < scalars.count, quantifiers.contains(scalars[offset + 1]) { break }
            literal.append(scalar)
        }
        return String(literal)
    }

    private static func hasTopLevelAlternation(_ scalars: [Unicode.Scalar]) -> Bool {
        var depth = 0
        var inClass = false
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "\\" {
                index += 2
                continue
            }
            if inClass {
                if scalar == "]" { inClass = false }
            } else if scalar == "[" {
                inClass = true
            } else if scalar == "(" {
                depth += 1
            } else if scalar == ")" {
                depth -= 1
            } else if scalar == "|" && depth == 0 {
                return true
            }
            index += 1
        }
        return false
    }
}
