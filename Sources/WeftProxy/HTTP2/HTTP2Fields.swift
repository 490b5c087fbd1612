import HTTPTypes
import NIOHPACK

/// Conversions between swift-http-types and HTTP/2 header blocks, for both sides of the proxy.
/// NIO's HTTP/2 handler has already validated each block it hands over (pseudo-headers present,
/// first and once each; names lowercase; no connection-specific fields). A field's HPACK indexing
/// travels with it: a field the sender marked never-indexed (credentials, cookies) stays so when
/// the proxy forwards it (RFC 7541 §7.1.3).
enum HTTP2Fields {
    /// A client's request head; nil without a valid `:method` or with an unknown pseudo-header.
    static func request(from headers: HPACKHeaders) -> HTTPRequest? {
        var method: HTTPRequest.Method?
        var scheme: String?
        var authority: String?
        var path: String?
        var extendedConnectProtocol: String?
        var fields = HTTPFields()
        fields.reserveCapacity(headers.count)
        for (name, value, indexing) in headers {
            guard name.utf8.first == UInt8(ascii: ":") else {
                append(name, value, indexing, to: &fields)
                continue
            }
            switch name {
            case ":method": method = HTTPRequest.Method(value)
            case ":scheme": scheme = value
            case ":authority": authority = value
            case ":path": path = value
            case ":protocol": extendedConnectProtocol = value
            default: return nil
            }
        }
        guard let method else { return nil }
        var request = HTTPRequest(method: method, scheme: scheme, authority: authority, path: path, headerFields: fields)
        if let extendedConnectProtocol { request.extendedConnectProtocol = extendedConnectProtocol }
        return request
    }

    static func response(from headers: HPACKHeaders) -> HTTPResponse? {
        guard let status = headers.first(name: ":status").flatMap(Int.init), (100...999).contains(status) else { return nil }
        return HTTPResponse(status: .init(code: status), headerFields: fields(from: headers))
    }

    /// Regular fields (pseudo-headers dropped): trailers, or a head's fields.
    static func fields(from headers: HPACKHeaders) -> HTTPFields {
        var fields = HTTPFields()
        fields.reserveCapacity(headers.count)
        for (name, value, indexing) in headers where name.utf8.first != UInt8(ascii: ":") {
            append(name, value, indexing, to: &fields)
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
        headers.add(name: ":status", value: String(response.status.code))
        add(response.headerFields, to: &headers)
        return headers
    }

    static func headers(for fields: HTTPFields) -> HPACKHeaders {
        var headers = HPACKHeaders()
        headers.reserveCapacity(fields.count)
        add(fields, to: &headers)
        return headers
    }

    private static func append(_ name: String, _ value: String, _ indexing: HPACKIndexing, to fields: inout HTTPFields) {
        guard let fieldName = HTTPField.Name(name) else { return }
        var field = HTTPField(name: fieldName, value: value)
        field.indexingStrategy = .init(indexing)
        fields.append(field)
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
