import HTTPTypes
import NIOHTTP1

extension HTTPFields {
    /// NIO's HTTP/1.1 headers (a response's, trailers) as swift-http-types fields, in order. Names
    /// that are not valid tokens are left out, as NIO's own conversion does, and so are the
    /// hop-by-hop fields ``HopByHop/isLeftOutOnArrival(name:value:)`` names unless
    /// `keepingHopByHop` (a `101 Switching Protocols` passes its `Upgrade` on as it is).
    ///
    /// NIO's conversion lowercases every name before the first Host to look for it, a new string for
    /// each header of a response, which has none: 1.3% of a proxied HTTP/1.1 request's instructions.
    init(http1 headers: HTTPHeaders, keepingHopByHop: Bool = false) {
        self.init()
        _ = append(http1: headers, takingHost: false, keepingHopByHop: keepingHopByHop)
    }

    /// A request's NIO headers as fields (as above), and the value of its first Host header, which
    /// becomes the request's authority and is left out of the fields. One pass: a name is compared
    /// with "host" only when it has four bytes.
    static func http1Request(_ headers: HTTPHeaders) -> (fields: HTTPFields, host: String?) {
        var fields = HTTPFields()
        let host = fields.append(http1: headers, takingHost: true, keepingHopByHop: false)
        return (fields, host)
    }

    private mutating func append(http1 headers: HTTPHeaders, takingHost: Bool, keepingHopByHop: Bool) -> String? {
        reserveCapacity(headers.count)
        var host: String?
        for (name, value) in headers {
            if takingHost && host == nil && name.utf8.count == 4 && name.caseInsensitiveEquals("host") {
                host = value
                continue
            }
            if !keepingHopByHop && HopByHop.isLeftOutOnArrival(name: name, value: value) { continue }
            if let fieldName = HTTPField.Name(name) {
                append(HTTPField(name: fieldName, value: value))
            }
        }
        return host
    }
}

extension HTTPResponse {
    /// An upstream's HTTP/1.1 response head in swift-http-types' model; nil for a status code
    /// beyond three digits, which HTTP does not have.
    init?(http1 head: HTTPResponseHead) {
        guard head.status.code <= 999 else { return nil }
        self.init(status: Status(code: Int(head.status.code), reasonPhrase: head.status.reasonPhrase),
                  headerFields: HTTPFields(http1: head.headers, keepingHopByHop: head.status == .switchingProtocols))
    }
}
