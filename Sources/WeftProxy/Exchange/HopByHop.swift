import HTTPTypes
import NIOHTTP1

/// Connection-specific ("hop-by-hop") header handling per RFC 9110 §7.6.1: these describe one
/// TCP connection and are never forwarded; framing is redone by the encoder on the next hop.
enum HopByHop {
    static let proxyConnection = HTTPField.Name("proxy-connection")!
    static let keepAlive = HTTPField.Name("keep-alive")!

    /// Removes hop-by-hop fields, including every field the `Connection` header names.
    ///
    /// Runs on every request and response: one pass to find out whether there is anything to do
    /// (most messages carry at most `Connection: keep-alive`), one pass to remove, and an
    /// allocation only when `Connection` names other fields.
    static func strip(_ fields: inout HTTPFields) {
        var first: Int?
        var count = 0
        var named: [HTTPField.Name] = []
        for index in fields.indices where isRemoved(fields[index]) {
            if fields[index].name == .connection { collectNamedFields(fields[index].value, into: &named) }
            first = first ?? index
            count += 1
        }
        guard let first else { return }
        if count == 1 && named.isEmpty && fields[first].name != .te {
            // The usual case: `Connection: keep-alive` (or `close`) and nothing else. The field is
            // the only one of its name (another would be hop-by-hop too, and counted; `te` aside,
            // whose `trailers` stays), so it goes by name, through swift-http-types' inlinable
            // path: `remove(at:)` is `RangeReplaceableCollection`'s, a generic `replaceSubrange`
            // that cost ~1 800 instructions.
            fields[fields[first].name] = nil
            return
        }
        fields.removeAll { isRemoved($0) || named.contains($0.name) }
    }

    /// A hop-by-hop field, except `TE: trailers`, which says the client accepts trailers end to
    /// end (gRPC requires it).
    private static func isRemoved(_ field: HTTPField) -> Bool {
        guard isHopByHop(field.name) else { return false }
        return field.name != .te || !field.value.trimmingBlanks().caseInsensitiveEquals("trailers")
    }

    /// The field names a `Connection` value lists, other than the connection options
    /// `keep-alive` and `close` (the first is removed anyway, the second names no field) and
    /// framing we rely on (`content-length`).
    private static func collectNamedFields(_ value: String, into named: inout [HTTPField.Name]) {
        let whole = value.trimmingBlanks()
        if whole.caseInsensitiveEquals("keep-alive") || whole.caseInsensitiveEquals("close") { return }
        for token in value.split(separator: ",") {
            let name = token.trimmingBlanks()
            if name.isEmpty || name.caseInsensitiveEquals("keep-alive") || name.caseInsensitiveEquals("close") { continue }
            if let field = HTTPField.Name(String(name)), field != .contentLength {
                named.append(field)
            }
        }
    }

    /// Whether an HTTP/1.1 header can be left out as it is converted to swift-http-types' fields,
    /// so that ``strip(_:)`` later finds nothing to remove (removing a field costs more than not
    /// adding it: ~2 300 instructions for the `Connection: keep-alive` of every response). Left out:
    /// `Connection` when it says only `keep-alive` or `close`, `Keep-Alive`, `Proxy-Connection`,
    /// `Transfer-Encoding` and `Upgrade` (the HTTP/1.1 handlers read framing and upgrades from
    /// NIO's head). Kept for ``strip(_:)``: a `Connection` that names other fields, which go too,
    /// and `TE`, whose `trailers` stays.
    static func isLeftOutOnArrival(name: String, value: String) -> Bool {
        switch name.utf8.count {
        case 7: return name.caseInsensitiveEquals("upgrade")
        case 10:
            if name.caseInsensitiveEquals("keep-alive") { return true }
            guard name.caseInsensitiveEquals("connection") else { return false }
            let whole = value.trimmingBlanks()
            return whole.caseInsensitiveEquals("keep-alive") || whole.caseInsensitiveEquals("close")
        case 16: return name.caseInsensitiveEquals("proxy-connection")
        case 17: return name.caseInsensitiveEquals("transfer-encoding")
        default: return false
        }
    }

    /// Checked for every field of every message: by length first, then one comparison.
    private static func isHopByHop(_ name: HTTPField.Name) -> Bool {
        let canonical = name.canonicalName
        switch canonical.utf8.count {
        case 2: return canonical == "te"
        case 7: return canonical == "upgrade"
        case 10: return canonical == "connection" || canonical == "keep-alive"
        case 16: return canonical == "proxy-connection"
        case 17: return canonical == "transfer-encoding"
        default: return false
        }
    }
}
