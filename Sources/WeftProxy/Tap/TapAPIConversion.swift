import HTTPTypes
import WeftFilter
import WeftRegex
import WeftRouting
import WeftTapAPI
import WeftTelemetry

/// A tap request the proxy cannot run: which part, what is wrong.
struct InvalidTapMatch: Error, CustomStringConvertible {
    var description: String
}

extension TapPredicate {
    /// The predicate a tap request's `Match` describes; regexes are compiled here, with the proxy's limits.
    init(_ match: Weft_Tap_V1_Match) throws(InvalidTapMatch) {
        switch match.match {
        case nil:
            self = .everything
        case .all(let seq):
            self = .all(try seq.matches.map { m throws(InvalidTapMatch) in try TapPredicate(m) })
        case .any(let seq):
            self = .any(try seq.matches.map { m throws(InvalidTapMatch) in try TapPredicate(m) })
        case .not(let inner):
            self = .not(try TapPredicate(inner))
        case .source(let string):
            self = .source(try StringMatcher(string, field: "source"))
        case .destination(let destination):
            var match = DestinationMatch()
            if !destination.service.isEmpty { match.service = destination.service }
            if !destination.namespace.isEmpty { match.namespace = destination.namespace }
            if !destination.address.isEmpty { match.address = destination.address }
            if !destination.workload.isEmpty {
                guard let workload = WorkloadRef(parsing: destination.workload) else {
                    throw InvalidTapMatch(description: "destination.workload '\(destination.workload)' is not kind/name")
                }
                match.workload = workload
            }
            self = .destination(match)
        case .method(let text):
            guard let method = HTTPRequest.Method(text.uppercased()) else {
                throw InvalidTapMatch(description: "method '\(text)' is not an HTTP method")
            }
            self = .method(method)
        case .path(let string):
            self = .path(try StringMatcher(string, field: "path"))
        case .authority(let string):
            self = .authority(try StringMatcher(string, field: "authority", lowercased: true))
        case .direction(let direction):
            switch direction {
            case .inbound: self = .direction(.inbound)
            case .outbound: self = .direction(.outbound)
            default: self = .everything
            }
        }
    }
}

extension StringMatcher {
    init(_ match: Weft_Tap_V1_StringMatch, field: String, lowercased: Bool = false) throws(InvalidTapMatch) {
        switch match.kind {
        case .exact(let value): self = .exact(lowercased ? value.lowercased() : value)
        case .prefix(let value): self = .prefix(lowercased ? value.lowercased() : value)
        case .regex(let pattern):
            do {
                self = .regex(try PCRE2Pattern(pattern))
            } catch {
                throw InvalidTapMatch(description: "\(field) regex: \(error)")
            }
        case nil:
            throw InvalidTapMatch(description: "\(field): give exact, prefix or regex")
        }
    }
}

extension Weft_Tap_V1_TapEvent {
    init(_ event: TapEvent) {
        self.init()
        context = .with {
            $0.id = event.context.id
            $0.direction = event.context.direction == .inbound ? .inbound : .outbound
            $0.source.address = event.context.source
            $0.destination.address = event.context.destination
            if let service = event.context.destinationService {
                $0.destination.service = service.service
                $0.destination.namespace = service.namespace ?? ""
                $0.destination.workload = service.workload?.description ?? ""
            }
            $0.tls = event.context.tls
            $0.route = event.context.route ?? ""
        }
        switch event.kind {
        case .requestInit(let method, let scheme, let authority, let path, let headers, let timestamp):
            requestInit = .with {
                $0.method = method
                $0.scheme = scheme ?? ""
                $0.authority = authority ?? ""
                $0.path = path ?? ""
                $0.headers = headers.map { header in .with { $0.name = header.name; $0.value = header.value } }
                $0.timestampUs = timestamp
            }
        case .responseInit(let status, let latency):
            responseInit = .with {
                $0.status = UInt32(clamping: status)
                $0.latencyUs = latency
            }
        case .responseEnd(let grpcStatus, let duration, let bytes, let error):
            responseEnd = .with {
                if let grpcStatus { $0.grpcStatus = UInt32(clamping: grpcStatus) }
                $0.durationUs = duration
                $0.responseBytes = UInt64(bytes)
                $0.error = error ?? ""
            }
        }
    }
}
