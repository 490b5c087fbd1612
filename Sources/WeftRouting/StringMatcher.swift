import WeftRegex

/// How one request value (method, host, path, header) is matched.
public enum StringMatcher: Sendable {
    /// The whole value equals this string.
    case exact(String)
    /// The value starts with this string.
    case prefix(String)
    /// The whole value matches this PCRE2 pattern (bounded; a limit hit is no match).
    case regex(PCRE2Pattern)

    /// Whether `value` matches.
    @inlinable
    public func matches(_ value: Substring, scratch: MatchScratch) -> Bool {
        switch self {
        case .exact(let expected): return value == expected[...]
        case .prefix(let prefix): return value.hasPrefix(prefix)
        case .regex(let pattern): return pattern.match(value, using: scratch) == .matched
        }
    }

    /// Whether `value` matches and, for a regex with named groups, what they captured: nil on
    /// no match, else the captures (empty for exact, prefix and patterns without names). One match.
    @inlinable
    public func match(_ value: Substring, scratch: MatchScratch) -> [String: String]? {
        switch self {
        case .exact, .prefix:
            return matches(value, scratch: scratch) ? [:] : nil
        case .regex(let pattern):
            return pattern.namedCaptures(in: value, using: scratch)
        }
    }
}
