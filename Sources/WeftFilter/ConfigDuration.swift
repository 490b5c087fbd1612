import NIOCore

/// A duration in config: `250ms`, `2s`, `1m`, `1h` (or a bare number of seconds).
public struct ConfigDuration: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    public static func milliseconds(_ value: Int64) -> ConfigDuration { .init(nanoseconds: value * 1_000_000) }
    public static func seconds(_ value: Int64) -> ConfigDuration { .init(nanoseconds: value * 1_000_000_000) }

    /// The same duration as NIO's `TimeAmount`.
    public var timeAmount: TimeAmount { .nanoseconds(nanoseconds) }

    public var description: String {
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
        return "\(nanoseconds)ns"
    }

    /// Parses `250ms`, `2s`, `1.5s`, `1m`, `1h`; nil when it is none of those.
    public init?(parsing text: String) {
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("µs", 1e3), ("ns", 1), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        let trimmed = text.trimmingWhitespace()
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let number = Double(trimmed.dropLast(suffix.count)), number >= 0, number.isFinite else { return nil }
            self.nanoseconds = Int64(number * scale)
            return
        }
        guard let seconds = Double(trimmed), seconds >= 0, seconds.isFinite else { return nil }
        self.nanoseconds = Int64(seconds * 1e9)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Double.self) {
            guard seconds >= 0 else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "a duration must not be negative")
            }
            self.nanoseconds = Int64(seconds * 1e9)
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = ConfigDuration(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a duration; write e.g. 250ms, 2s, 1m")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension String {
    func trimmingWhitespace() -> Substring {
        var slice = self[...]
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return slice
    }
}
