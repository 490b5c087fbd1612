import HTTPTypes
import NIOHTTP1

/// Connection-specific ("hop-by-hop") header handling per RFC 9110 §7.6.1: these describe one
/// TCP connection and are never forwarded; framing is redone by the encoder on the next hop.
enum HopByHop {
    static let proxyConnection = HTTPField.Name("proxy-connection")!
    static let keepAlive = HTTPField.Name("keep-alive")!

    /// Removes hop-by-hop fields, including every field the `Connection` header names.
    static func strip(_ fields: inout HTTPFields) {
        // Most requests and responses carry none: one pass to find out, instead of six lookups.
        guard fields.contains(where: { isHopByHop($0.name) }) else { return }
        if let connection = fields[.connection] {
            for token in connection.split(separator: ",") {
                let name = token.trimmingBlanks()
                if let field = HTTPField.Name(String(name)), !isEndToEndFraming(field) {
                    fields[field] = nil
                }
            }
            fields[.connection] = nil
        }
        fields[keepAlive] = nil
        fields[proxyConnection] = nil
        // `TE: trailers` says the client accepts trailers end to end; gRPC requires it. Other TE values go.
        if let te = fields[.te], te.trimmingBlanks().lowercased() != "trailers" {
            fields[.te] = nil
        }
        fields[.upgrade] = nil
        fields[.transferEncoding] = nil
    }

    private static func isHopByHop(_ name: HTTPField.Name) -> Bool {
        name == .connection || name == keepAlive || name == proxyConnection || name == .te || name == .upgrade
            || name == .transferEncoding
    }

    /// `Connection: content-length` must not make us drop framing we rely on.
    private static func isEndToEndFraming(_ name: HTTPField.Name) -> Bool {
        name == .contentLength
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    func trimmingBlanks() -> Substring {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return Substring(slice)
    }
}
