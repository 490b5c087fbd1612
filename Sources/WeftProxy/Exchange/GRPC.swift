import HTTPTypes
import NIOCore
import WeftFilter

/// The bits of gRPC-over-HTTP/2 the proxy itself must speak: statuses for the failures it
/// generates (as trailers-only responses) and the `grpc-timeout` deadline.
enum GRPC {
    static let statusField = HTTPField.Name("grpc-status")!
    static let messageField = HTTPField.Name("grpc-message")!
    static let timeoutField = HTTPField.Name("grpc-timeout")!

    /// gRPC status codes (the ones the proxy produces or maps to).
    enum Status: Int {
        case ok = 0, cancelled = 1, unknown = 2, invalidArgument = 3, deadlineExceeded = 4, notFound = 5
        case permissionDenied = 7, resourceExhausted = 8, unimplemented = 12, `internal` = 13
        case unavailable = 14, unauthenticated = 16
    }

    static func isGRPCContentType(_ value: String) -> Bool {
        value.hasPrefix("application/grpc")
    }

    /// `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n).
    static func parseTimeout(_ value: String) -> TimeAmount? {
        guard let unit = value.last, value.count >= 2, value.count <= 9,
              let amount = Int64(value.dropLast()), amount >= 0 else { return nil }
        switch unit {
        case "H": return .hours(amount)
        case "M": return .minutes(amount)
        case "S": return .seconds(amount)
        case "m": return .milliseconds(amount)
        case "u": return .microseconds(amount)
        case "n": return .nanoseconds(amount)
        default: return nil
        }
    }

    /// The status a proxy-generated HTTP status stands for (gRPC's HTTP-to-status mapping,
    /// except that the proxy's own timeouts are deadlines).
    static func status(for http: HTTPResponse.Status) -> Status {
        switch http.code {
        case 400: return .internal
        case 401: return .unauthenticated
        case 403: return .permissionDenied
        case 404: return .unimplemented
        case 429: return .resourceExhausted
        case 504: return .deadlineExceeded
        case 502, 503: return .unavailable
        default: return .unknown
        }
    }

    /// A trailers-only response (HTTP 200, status in the headers) for a local answer.
    static func trailersOnly(for local: LocalResponse) -> HTTPResponse {
        var fields = HTTPFields()
        fields[.contentType] = "application/grpc"
        fields[statusField] = String(status(for: local.status).rawValue)
        let message = local.headerFields[.weftProxyError] ?? local.body.trimmingBlanks().description
        fields[messageField] = percentEncoded(message)
        if let proxyError = local.headerFields[.weftProxyError] {
            fields[.weftProxyError] = proxyError
        }
        return HTTPResponse(status: .ok, headerFields: fields)
    }

    /// `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
    static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                result += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
