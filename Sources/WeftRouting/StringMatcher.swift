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

    /// Named captures of a regex matcher on `value` (empty for exact and prefix).
    public func captures(_ value: Substring, scratch: MatchScratch) -> [String: String] {
        guard case .regex(let pattern) = self, !pattern.captureNames.isEmpty,
              case .matched(let captures) = pattern.captures(in: String(value), using: scratch)
        else { return [:] }
        return captures.named.mapValues(String.init)
    }
}
