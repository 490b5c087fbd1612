import NIOCore
import WeftFilter

/// Decides, from a connection's first bytes, whether it is HTTP/2 (prior-knowledge preface),
/// HTTP/1.x (a request line) or opaque TCP (anything else, TLS included). It reads at most
/// ``maxBytes``; like Linkerd it biases towards availability: when the bytes do not tell in
/// time, the connection is forwarded as opaque TCP rather than refused.
public struct ProtocolDetectFilter: ConnectionFilter {
    /// The HTTP/2 client connection preface.
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// How many bytes are looked at, at most.
    public static let maxBytes = 1024

    let timeout: ConfigDuration
    let opaquePorts: Set<Int>

    public var detectionTimeout: TimeAmount { timeout.timeAmount }
    public var timeoutProtocol: DetectedProtocol { .opaque }

    public func protocolWithoutDetection(destinationPort: Int) -> DetectedProtocol? {
        opaquePorts.contains(destinationPort) ? .opaque : nil
    }

    public func classify(_ prefix: ByteBuffer, destinationPort: Int) -> DetectedProtocol? {
        let bytes = prefix.readableBytesView
        guard !bytes.isEmpty else { return nil }
        let compared = min(bytes.count, Self.preface.count)
        if bytes.prefix(compared).elementsEqual(Self.preface.prefix(compared)) {
            // "PRI * HTTP/2.0" also starts like an HTTP/1 request line; only the whole preface tells.
            return compared == Self.preface.count ? .http2 : nil
        }
        if let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
            var line = bytes[bytes.startIndex..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            return Self.isRequestLine(line) || Self.looksLikeMalformedHTTP(line) ? .http1 : .opaque
        }
        guard Self.couldStartRequestLine(bytes) else { return .opaque }
        guard bytes.count >= Self.maxBytes else { return nil }
        // A method and a long request target: the HTTP parser, not detection, decides what is too long.
        return bytes.contains(UInt8(ascii: " ")) ? .http1 : .opaque
    }

    /// `METHOD SP request-target SP HTTP/1.x`.
    static func isRequestLine<Bytes: Collection<UInt8>>(_ line: Bytes) -> Bool {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, let method = parts.first, !method.isEmpty, method.allSatisfy(isTokenByte),
              !parts[1].isEmpty, parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return false }
        let version = Array(parts[2])
        return version.count == 8 && version.starts(with: Array("HTTP/1.".utf8)) && (version[7] == UInt8(ascii: "0") || version[7] == UInt8(ascii: "1"))
    }

    /// A line that starts like a request (`TOKEN SP`) and names an HTTP version, but is not a valid
    /// request line: HTTP with a mistake, which the HTTP parser answers with 400, rather than opaque TCP.
    static func looksLikeMalformedHTTP<Bytes: Collection<UInt8>>(_ line: Bytes) -> Bool {
        guard let space = line.firstIndex(of: UInt8(ascii: " ")), space != line.startIndex,
              line[line.startIndex..<space].allSatisfy(isTokenByte) else { return false }
        let marker = Array(" HTTP/".utf8)
        let bytes = Array(line)
        guard bytes.count >= marker.count else { return false }
        return (0...(bytes.count - marker.count)).contains { bytes[$0..<($0 + marker.count)].elementsEqual(marker) }
    }

    /// Whether `bytes` (no newline yet) can still become a request line.
    static func couldStartRequestLine<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
        var sawSpace = false
        for byte in bytes {
            if byte == UInt8(ascii: " ") {
                sawSpace = true
            } else if !sawSpace {
                if !isTokenByte(byte) { return false }
            } else if byte <= 0x20 || byte >= 0x7F {
                return byte == UInt8(ascii: "\r")
            }
        }
        return true
    }

    /// RFC 9110 `tchar`.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}
