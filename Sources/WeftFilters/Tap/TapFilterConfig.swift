import WeftFilter

/// Config of the `tap` filter.
///
/// ```yaml
/// - name: tap
///   config:
///     redactHeaders: [authorization, cookie]   # never shown, even when a tapper asks for them
/// ```
public struct TapFilterConfig: Decodable, Sendable {
    /// Request headers whose values tap replaces with `<redacted>`.
    public var redactHeaders: [String]

    public static let defaultRedactedHeaders = ["authorization", "proxy-authorization", "cookie", "set-cookie"]

    enum CodingKeys: String, CodingKey, CaseIterable { case redactHeaders }

    public init(redactHeaders: [String] = TapFilterConfig.defaultRedactedHeaders) {
        self.redactHeaders = redactHeaders
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        redactHeaders = try container.decodeIfPresent([String].self, forKey: .redactHeaders) ?? Self.defaultRedactedHeaders
    }
}
