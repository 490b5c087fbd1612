import HTTPTypes
import NIOHPACK

/// Conversions between swift-http-types and HTTP/2 header blocks, for both sides of the proxy.
///
/// A received block is checked here, in the pass that converts it, against what RFC 9113 calls
/// malformed (§8.1.1: field names, §8.2.1: field values, §8.2.2: connection-specific fields,
/// §8.3: pseudo-headers), the checks NIO's handler would otherwise make. NIO's own checks are off
/// (`HTTP2ConnectionSettings`): it makes them on every block it sends as well as on every one it
/// receives, and what a proxy sends it has received and checked already (or built from
/// swift-http-types, whose names are tokens and whose values are made legal when set), so they
/// cost a second pass per block for nothing. A field's HPACK indexing travels with it: a field the
/// sender marked never-indexed (credentials, cookies) stays so when the proxy forwards it
/// (RFC 7541 §7.1.3).
enum HTTP2Fields {
    /// A client's request head. NIO's rules, which it would apply with its checks on: the
    /// pseudo-headers first, each once, `:method`, `:scheme` and a non-empty `:path` present
    /// (`CONNECT`: `:method` and `:authority` only); no `:protocol` (the proxy does not offer
    /// extended CONNECT); `te` only as `trailers`.
    static func request(from headers: HPACKHeaders) throws(MalformedHeaderBlock) -> HTTPRequest {
        var method: String?
        var scheme: String?
        var authority: String?
        var path: String?
        let fields = try fields(of: headers, inRequest: true) { (name, value) throws(MalformedHeaderBlock) in
            guard isValidPseudoHeaderValue(value) else { throw .invalidValue(name) }
            switch name {
            case ":method": try set(&method, value, name)
            case ":scheme": try set(&scheme, value, name)
            case ":authority": try set(&authority, value, name)
            case ":path": try set(&path, value, name)
            default: throw .unknownPseudoHeader(name)
            }
        }
        guard let method else { throw .missingPseudoHeader(":method") }
        guard let requestMethod = HTTPRequest.Method(method) else { throw .invalidValue(":method") }
        if requestMethod == .connect {
            guard authority != nil else { throw .missingPseudoHeader(":authority") }
            if scheme != nil { throw .pseudoHeaderNotAllowed(":scheme", "CONNECT") }
            if path != nil { throw .pseudoHeaderNotAllowed(":path", "CONNECT") }
        } else {
            guard scheme != nil else { throw .missingPseudoHeader(":scheme") }
            guard let path, !path.isEmpty else { throw .missingPseudoHeader(":path") }
        }
        return HTTPRequest(method: requestMethod, scheme: scheme, authority: authority, path: path, headerFields: fields)
    }

    /// An upstream's response head: `:status` (three digits) first and alone among pseudo-headers.
    static func response(from headers: HPACKHeaders) throws(MalformedHeaderBlock) -> HTTPResponse {
        var status: Int?
        let fields = try fields(of: headers, inRequest: false) { (name, value) throws(MalformedHeaderBlock) in
            guard name == ":status" else { throw .unknownPseudoHeader(name) }
            guard status == nil else { throw .duplicatePseudoHeader(name) }
            guard value.utf8.count == 3, let code = Int(value), code >= 100 else { throw .invalidValue(name) }
            status = code
        }
        guard let status else { throw .missingPseudoHeader(":status") }
        return HTTPResponse(status: .init(code: status), headerFields: fields)
    }

    /// Trailers, from either side: regular fields only.
    static func trailers(from headers: HPACKHeaders, inRequest: Bool) throws(MalformedHeaderBlock) -> HTTPFields {
        try fields(of: headers, inRequest: inRequest) { (name, _) throws(MalformedHeaderBlock) in
            throw .pseudoHeaderInTrailers(name)
        }
    }

    /// One pass over a received block: regular fields checked and converted, each pseudo-header
    /// (all before the first regular field) handed to `pseudoHeader`.
    private static func fields(of headers: HPACKHeaders, inRequest: Bool,
                               pseudoHeader: (String, String) throws(MalformedHeaderBlock) -> Void) throws(MalformedHeaderBlock) -> HTTPFields {
        var fields = HTTPFields()
        fields.reserveCapacity(headers.count)
        for (name, value, indexing) in headers {
            guard name.utf8.first == UInt8(ascii: ":") else {
                try append(name, value, indexing, to: &fields, inRequest: inRequest)
                continue
            }
            try pseudoHeader(name, value)
            guard fields.isEmpty else { throw .pseudoHeaderAfterFields(name) }
        }
        return fields
    }

    static func headers(for request: HTTPRequest) -> HPACKHeaders {
        var headers = HPACKHeaders()
        headers.reserveCapacity(request.headerFields.count + 4)
        headers.add(name: ":method", value: request.method.rawValue)
        headers.add(name: ":scheme", value: request.scheme ?? "http")
        if let authority = request.authority { headers.add(name: ":authority", value: authority) }
        headers.add(name: ":path", value: request.path ?? "/")
        add(request.headerFields, to: &headers)
        return headers
    }

    static func headers(for response: HTTPResponse) -> HPACKHeaders {
        var headers = HPACKHeaders()
        headers.reserveCapacity(response.headerFields.count + 1)
        // The field's value is the three digits already: no parsing into a status and back.
        headers.add(name: ":status", value: response.pseudoHeaderFields.status.value)
        add(response.headerFields, to: &headers)
        return headers
    }

    static func headers(for fields: HTTPFields) -> HPACKHeaders {
        var headers = HPACKHeaders()
        headers.reserveCapacity(fields.count)
        add(fields, to: &headers)
        return headers
    }

    /// A regular field: a lowercase token for a name, no NUL, CR or LF in the value, nothing
    /// connection-specific (in a request, `te` only as `trailers`).
    private static func append(_ name: String, _ value: String, _ indexing: HPACKIndexing, to fields: inout HTTPFields,
                               inRequest: Bool) throws(MalformedHeaderBlock) {
        // A token (swift-http-types checks), and lowercase: its canonical form is itself.
        guard let fieldName = HTTPField.Name(name), fieldName.canonicalName == name else { throw .invalidName(name) }
        switch name.utf8.count {
        case 2 where inRequest && name == "te":
            guard value == "trailers" else { throw .connectionSpecific(name) }
        case 7 where name == "upgrade",
             10 where name == "connection" || name == "keep-alive",
             16 where name == "proxy-connection",
             17 where name == "transfer-encoding":
            throw .connectionSpecific(name)
        default:
            break
        }
        guard !value.utf8.contains(where: { $0 == 0 || $0 == 0x0A || $0 == 0x0D }) else { throw .invalidValue(name) }
        var field = HTTPField(name: fieldName, value: value)
        field.indexingStrategy = .init(indexing)
        fields.append(field)
    }

    private static func set(_ slot: inout String?, _ value: String, _ name: String) throws(MalformedHeaderBlock) {
        guard slot == nil else { throw .duplicatePseudoHeader(name) }
        slot = value
    }

    /// No pseudo-header's grammar admits a control character, a space or DEL; in `:path` they
    /// would split the request line of an HTTP/1.1 upstream (request smuggling).
    private static func isValidPseudoHeaderValue(_ value: String) -> Bool {
        !value.utf8.contains { $0 <= 0x20 || $0 == 0x7F }
    }

    private static func add(_ fields: HTTPFields, to headers: inout HPACKHeaders) {
        for field in fields {
            headers.add(name: field.name.canonicalName, value: field.value, indexing: .init(field.indexingStrategy))
        }
    }
}

extension HPACKIndexing {
    init(_ strategy: HTTPField.DynamicTableIndexingStrategy) {
        switch strategy {
        case .avoid: self = .nonIndexable
        case .disallow: self = .neverIndexed
        default: self = .indexable
        }
    }
}

extension HTTPField.DynamicTableIndexingStrategy {
    init(_ indexing: HPACKIndexing) {
        switch indexing {
        case .indexable: self = .automatic
        case .nonIndexable: self = .avoid
        case .neverIndexed: self = .disallow
        }
    }
}

/// Why a received header block is malformed (RFC 9113 §8.1.1): a stream error, never a
/// connection one. A client's stream is reset (PROTOCOL_ERROR); an upstream's answer is a 502.
enum MalformedHeaderBlock: Error, Equatable, CustomStringConvertible {
    case invalidName(String)
    case invalidValue(String)
    case connectionSpecific(String)
    case unknownPseudoHeader(String)
    case duplicatePseudoHeader(String)
    case missingPseudoHeader(String)
    case pseudoHeaderAfterFields(String)
    case pseudoHeaderInTrailers(String)
    case pseudoHeaderNotAllowed(String, String)

    var description: String {
        switch self {
        case .invalidName(let name): "field name '\(name)' is not a lowercase token"
        case .invalidValue(let name): "field '\(name)' has a value HTTP/2 forbids"
        case .connectionSpecific(let name): "connection-specific field '\(name)' is not allowed in HTTP/2"
        case .unknownPseudoHeader(let name): "pseudo-header '\(name)' is not allowed here"
        case .duplicatePseudoHeader(let name): "pseudo-header '\(name)' appears twice"
        case .missingPseudoHeader(let name): "pseudo-header '\(name)' is missing"
        case .pseudoHeaderAfterFields(let name): "pseudo-header '\(name)' comes after regular fields"
        case .pseudoHeaderInTrailers(let name): "pseudo-header '\(name)' in trailers"
        case .pseudoHeaderNotAllowed(let name, let method): "pseudo-header '\(name)' is not allowed in a \(method) request"
        }
    }
}
