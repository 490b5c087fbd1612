import HTTPTypes
import NIOHTTP1

extension HTTPFields {
    /// NIO's HTTP/1.1 headers as swift-http-types fields, in order. Names that are not valid tokens
    /// are left out, as NIO's own conversion does; with `droppingFirstHost` the first Host header is
    /// too (a request's Host becomes its authority).
    ///
    /// NIO's conversion lowercases every name before the first Host to look for it, a new string for
    /// each header of a response, which has none: 1.3% of a proxied HTTP/1.1 request's instructions.
    /// Here a name is compared with "host" only when it has four bytes, and only for requests.
    init(http1 headers: HTTPHeaders, droppingFirstHost: Bool) {
        self.init()
        reserveCapacity(headers.count)
        var hostPending = droppingFirstHost
        for (name, value) in headers {
            if hostPending && name.utf8.count == 4 && name.caseInsensitiveEquals("host") {
                hostPending = false
                continue
            }
            if let fieldName = HTTPField.Name(name) {
                append(HTTPField(name: fieldName, value: value))
            }
        }
    }
}

extension HTTPResponse {
    /// An upstream's HTTP/1.1 response head in swift-http-types' model; nil for a status code
    /// beyond three digits, which HTTP does not have.
    init?(http1 head: HTTPResponseHead) {
        guard head.status.code <= 999 else { return nil }
        self.init(status: Status(code: Int(head.status.code), reasonPhrase: head.status.reasonPhrase),
                  headerFields: HTTPFields(http1: head.headers, droppingFirstHost: false))
    }
}
