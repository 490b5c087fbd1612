/// One series' value: a metric name, its labels, and a number.
public struct Sample: Sendable, Hashable {
    public var name: String
    public var labels: [String: String]
    public var value: Double

    public init(name: String, labels: [String: String], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }
}

/// The Prometheus text format, read back: just enough for the series stat needs.
public enum Exposition {
    /// The series stat is computed from.
    public static let statNames: Set<String> = [
        "response_total", "response_latency_ms_bucket", "tcp_open_connections", "process_start_time_seconds",
    ]

    /// The samples of `text` whose names are in `names` (comments, timestamps and others skipped).
    public static func parse(_ text: String, keeping names: Set<String> = statNames) -> [Sample] {
        var samples: [Sample] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let first = line.first, first != "#" else { continue }
            let nameEnd = line.firstIndex { $0 == "{" || $0 == " " } ?? line.endIndex
            let name = String(line[..<nameEnd])
            guard names.contains(name) else { continue }
            var labels: [String: String] = [:]
            var rest = line[nameEnd...]
            if rest.first == "{" {
                guard let (parsed, after) = parseLabels(rest.dropFirst()) else { continue }
                labels = parsed
                rest = after
            }
            let fields = rest.split(separator: " ", omittingEmptySubsequences: true)
            guard let valueText = fields.first, let value = parseValue(valueText) else { continue }
            samples.append(Sample(name: name, labels: labels, value: value))
        }
        return samples
    }

    private static func parseValue(_ text: Substring) -> Double? {
        switch text {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }

    /// `a="x",b="y\"z"}` → labels and what follows the closing brace.
    private static func parseLabels(_ text: Substring) -> ([String: String], Substring)? {
        var labels: [String: String] = [:]
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == "}" { return (labels, text[text.index(after: index)...]) }
            if text[index] == "," || text[index] == " " { index = text.index(after: index); continue }
            guard let equals = text[index...].firstIndex(of: "=") else { return nil }
            let key = String(text[index..<equals])
            var cursor = text.index(after: equals)
            guard cursor < text.endIndex, text[cursor] == "\"" else { return nil }
            cursor = text.index(after: cursor)
            var value = ""
            while cursor < text.endIndex, text[cursor] != "\"" {
                if text[cursor] == "\\", text.index(after: cursor) < text.endIndex {
                    cursor = text.index(after: cursor)
                    value.append(text[cursor] == "n" ? "\n" : text[cursor])
                } else {
                    value.append(text[cursor])
                }
                cursor = text.index(after: cursor)
            }
            guard cursor < text.endIndex else { return nil }
            labels[key] = value
            index = text.index(after: cursor)
        }
        return nil
    }
}
