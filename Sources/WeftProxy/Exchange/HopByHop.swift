import HTTPTypes
import NIOHTTP1

/// Connection-specific ("hop-by-hop") header handling per RFC 9110 §7.6.1: these describe one
/// TCP connection and are never forwarded; framing is redone by the encoder on the next hop.
enum HopByHop {
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
        switch hopByHopField(named: field.name.canonicalName) {
        case nil: false
        case .te: !field.value.trimmingBlanks().caseInsensitiveEquals("trailers")
        default: true
        }
    }

    /// The field names a `Connection` value lists, other than the connection options
    /// `keep-alive` and `close` (the first is removed anyway, the second names no field) and
    /// framing we rely on (`content-length`).
    private static func collectNamedFields(_ value: String, into named: inout [HTTPField.Name]) {
        if namesNoField(value) { return }
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
    /// every hop-by-hop field but two, which stay for ``strip(_:)``: a `Connection` that names
    /// other fields, which go too, and `TE`, whose `trailers` stays. (The HTTP/1.1 handlers read
    /// framing, keep-alive and upgrades from NIO's head, not from the fields.)
    static func isLeftOutOnArrival(name: String, value: String) -> Bool {
        switch hopByHopField(named: name) {
        case nil, .te: false
        case .connection: namesNoField(value)
        default: true
        }
    }

    /// A `Connection` value that is only the option `keep-alive` or `close`: it names no field.
    private static func namesNoField(_ connection: String) -> Bool {
        let whole = connection.trimmingBlanks()
        return whole.caseInsensitiveEquals("keep-alive") || whole.caseInsensitiveEquals("close")
    }

    /// The connection-specific fields (RFC 9110 §7.6.1, and `Proxy-Connection`, which some
    /// clients still send).
    private enum Field {
        case connection, keepAlive, proxyConnection, te, transferEncoding, upgrade
    }

    /// Which of them `name` is, in any case. Checked for every field of every message: by length
    /// first, so most names cost no comparison.
    private static func hopByHopField(named name: String) -> Field? {
        switch name.utf8.count {
        case 2: name.caseInsensitiveEquals("te") ? .te : nil
        case 7: name.caseInsensitiveEquals("upgrade") ? .upgrade : nil
        case 10: name.caseInsensitiveEquals("connection") ? .connection : name.caseInsensitiveEquals("keep-alive") ? .keepAlive : nil
        case 16: name.caseInsensitiveEquals("proxy-connection") ? .proxyConnection : nil
        case 17: name.caseInsensitiveEquals("transfer-encoding") ? .transferEncoding : nil
        default: nil
        }
    }
}
