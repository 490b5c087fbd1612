/// A coding key for any string, used to see every key a config mapping holds.
public struct AnyCodingKey: CodingKey, Hashable, Sendable {
    public var stringValue: String
    public var intValue: Int?
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

extension Decoder {
    /// Throws when the mapping being decoded has a key not in `Keys`, so that a typo in
    /// config (`timout: 2s`) is an error naming the field instead of a silently ignored line.
    public func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        guard let container = try? self.container(keyedBy: AnyCodingKey.self) else { return }
        let known = Set(Keys.allCases.map(\.stringValue))
        for key in container.allKeys where !known.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(.init(
                codingPath: codingPath + [key],
                debugDescription: "unknown field '\(key.stringValue)'; expected one of: \(known.sorted().joined(separator: ", "))"))
        }
    }
}

/// A config value written either as one item or as a list (`method: GET` or `method: [GET, HEAD]`).
public struct OneOrMany<Element: Decodable & Sendable>: Decodable, Sendable {
    public var values: [Element]

    public init(_ values: [Element]) { self.values = values }

    public init(from decoder: any Decoder) throws {
        if let many = try? [Element](from: decoder) {
            values = many
        } else {
            values = [try Element(from: decoder)]
        }
    }
}
