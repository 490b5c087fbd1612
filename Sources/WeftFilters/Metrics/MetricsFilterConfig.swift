import WeftFilter

/// Config of the `metrics` filter. It has no options yet: every request the chain sees is
/// counted, labelled by direction, the proxy's identity, the destination service and the route.
///
/// ```yaml
/// - name: metrics
/// ```
public struct MetricsFilterConfig: Decodable, Sendable {
    public init() {}

    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: AnyCodingKey.self), let key = container.allKeys.first {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath + [key],
                debugDescription: "unknown field '\(key.stringValue)'; the metrics filter takes no options"))
        }
    }
}
