/// A header value with `${variable}` placeholders, parsed once at config time.
struct HeaderTemplate: Sendable, Equatable {
    enum Part: Sendable, Equatable {
        case literal(String)
        case variable(String)
    }

    let parts: [Part]
    /// The value, when the template names no variable: built once, at config time.
    let constantValue: String?

    /// Parses `text`; throws a message when a `${` is not closed or names nothing.
    init(_ text: String) throws(TemplateError) {
        var parts: [Part] = []
        var rest = text[...]
        while let open = rest.range(of: "${") {
            if open.lowerBound > rest.startIndex { parts.append(.literal(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                throw TemplateError(message: "'${' without a closing '}' in '\(text)'")
            }
            let name = String(rest[open.upperBound..<close])
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw TemplateError(message: "'${\(name)}' is not a variable name (letters, digits, _)")
            }
            parts.append(.variable(name))
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = parts
        self.constantValue = parts.allSatisfy { if case .literal = $0 { true } else { false } }
            ? parts.map { if case .literal(let text) = $0 { text } else { "" } }.joined()
            : nil
    }

    /// The value with every variable filled in, or nil if one is missing.
    func render(_ lookup: (String) -> String?) -> String? {
        if let constantValue { return constantValue }
        var result = ""
        for part in parts {
            switch part {
            case .literal(let text): result += text
            case .variable(let name):
                guard let value = lookup(name) else { return nil }
                result += value
            }
        }
        return result
    }
}

struct TemplateError: Error {
    let message: String
}
