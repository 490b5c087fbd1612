import HTTPTypes
import WeftRegex

/// Routes in precedence order: the first route whose match holds wins (config order).
///
/// Pure: no I/O, compiled once per config, safe to share between event loops.
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

    public init(_ entries: [Entry]) {
        self.entries = entries
    }

    /// The first matching route, its index and its named captures. Inlinable so that callers get a
    /// version specialized for their `Target` (an unspecialized generic loop allocates per route).
    @inlinable
    public func find(_ request: HTTPRequest, scratch: MatchScratch) -> (index: Int, target: Target, captures: [String: String])? {
        guard !entries.isEmpty else { return nil }
        let view = RequestView(request)
        var index = 0
        while index < entries.count {
            if entries[index].match.matches(view, scratch: scratch) {
                return (index, entries[index].target, entries[index].match.captures(view, scratch: scratch))
            }
            index += 1
        }
        return nil
    }
}
