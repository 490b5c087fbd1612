import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOCore
import WeftFilter
import WeftProxy
import WeftTapAPI

/// What `weft tap RESOURCE` asks for, before it is turned into per-proxy tap requests.
public struct TapQuery: Sendable {
    public var resource: ResourceRef
    /// A resource (its proxies' requests to `resource`) or a client address prefix.
    public var from: String?
    public var to: ResourceRef?
    public var path: String?
    public var pathRegex: String?
    public var method: String?
    public var authority: String?
    public var maxRps: UInt32 = 100
    public var limit: UInt64 = 0
    public var headers: [String] = []

    public init(resource: ResourceRef) {
        self.resource = resource
    }
}

/// Opens one tap per proxy that carries a resource's traffic and merges them into one stream.
public struct TapFanOut: Sendable {
    /// One line of the merged stream: an event, or a proxy's failure (the others go on).
    public enum Item: Sendable {
        case event(Weft_Tap_V1_TapEvent)
        case proxyFailed(proxy: String, message: String)
        /// A tick every `heartbeat` (only when asked for), events or not: a chance to write something
        /// and learn whether the reader is still there.
        case heartbeat
    }

    let controller: MeshController
    let group: any EventLoopGroup

    /// The proxies to tap and the request each gets. `deploy/A --to deploy/B` taps A's proxies for
    /// requests to B; `deploy/B --from deploy/A` does the same (the callee's proxy cannot tell
    /// which workload called it, the caller's can).
    public func plan(_ query: TapQuery) throws(StatError) -> (proxies: [ProxyStatus], request: Weft_Tap_V1_ObserveRequest) {
        var conditions: [Weft_Tap_V1_Match] = []
        var tapped = query.resource
        if let from = query.from {
            // A resource (deploy/A) taps A's calls; anything else (an address) filters by client.
            if let fromResource = try? ResourceRef(parsing: from, namespace: query.resource.namespace) {
                if query.to != nil { throw StatError.badRequest("use --from RESOURCE or --to, not both") }
                tapped = fromResource
                conditions.append(.with { $0.direction = .outbound })
                conditions.append(try Self.destination(query.resource))
            } else {
                conditions.append(.with { $0.source = .with { $0.prefix = from } })
            }
        }
        if let to = query.to {
            conditions.append(.with { $0.direction = .outbound })
            conditions.append(try Self.destination(to))
        }
        conditions += Self.requestConditions(path: query.path, pathRegex: query.pathRegex, method: query.method, authority: query.authority)

        let proxies = try self.proxies(of: tapped)
        let perProxyRate = max(1, query.maxRps / UInt32(max(1, proxies.count)))
        let request = Weft_Tap_V1_ObserveRequest.with {
            $0.match = .with { $0.all = .with { $0.matches = conditions } }
            $0.maxRps = perProxyRate
            $0.limit = query.limit
            $0.extractHeaders = query.headers.map { $0.lowercased() }
        }
        return (proxies, request)
    }

    /// The connected proxies that carry `resource`'s traffic.
    func proxies(of resource: ResourceRef) throws(StatError) -> [ProxyStatus] {
        let all = controller.proxies.filter { $0.connected && !$0.tapAddress.isEmpty }
        let inNamespace = all.filter { resource.namespace == nil || $0.namespace == resource.namespace }
        let chosen: [ProxyStatus]
        switch resource.kind {
        case .workload(let kind):
            chosen = inNamespace.filter { proxy in
                guard let ref = WorkloadRef(parsing: proxy.workload), ref.kind == kind else { return false }
                return resource.name == nil || ref.name == resource.name
            }
        case .pod:
            chosen = inNamespace.filter { resource.name == nil || $0.instance == resource.name }
        case .namespace:
            chosen = all.filter { resource.name == nil || $0.namespace == resource.name }
        case .service:
            let serving = (controller.mesh?.workloads ?? []).filter {
                (resource.name == nil || $0.service == resource.name) && (resource.namespace == nil || $0.namespace == resource.namespace)
            }
            chosen = inNamespace.filter { proxy in
                serving.contains { $0.namespace == proxy.namespace && $0.ref == WorkloadRef(parsing: proxy.workload) }
            }
        }
        guard !chosen.isEmpty else {
            throw StatError.notFound("no connected proxy carries \(resource)\(resource.namespace.map { " in namespace \($0)" } ?? ""); `weft check` lists the proxies")
        }
        return chosen
    }

    /// The request-line filters every tap takes (`weft tap` through the controller or `--proxy`).
    public static func requestConditions(path: String?, pathRegex: String?, method: String?, authority: String?) -> [Weft_Tap_V1_Match] {
        var conditions: [Weft_Tap_V1_Match] = []
        if let path { conditions.append(.with { $0.path = .with { $0.prefix = path } }) }
        if let pathRegex { conditions.append(.with { $0.path = .with { $0.regex = pathRegex } }) }
        if let method { conditions.append(.with { $0.method = method.uppercased() }) }
        if let authority { conditions.append(.with { $0.authority = .with { $0.exact = authority.lowercased() } }) }
        return conditions
    }

    static func destination(_ resource: ResourceRef) throws(StatError) -> Weft_Tap_V1_Match {
        var destination = Weft_Tap_V1_DestinationMatch()
        switch resource.kind {
        case .workload(let kind):
            guard let name = resource.name else { throw StatError.badRequest("--to/--from needs a name: \(resource.kind.shortName)/NAME") }
            destination.workload = "\(kind)/\(name)"
        case .service:
            guard let name = resource.name else { throw StatError.badRequest("--to/--from needs a name: svc/NAME") }
            destination.service = name
        case .namespace:
            guard let name = resource.name else { throw StatError.badRequest("--to/--from needs a name: ns/NAME") }
            destination.namespace = name
        case .pod:
            throw StatError.badRequest("requests to a pod cannot be told apart by the caller: use deploy/NAME or svc/NAME")
        }
        if let namespace = resource.namespace { destination.namespace = namespace }
        return .with { $0.destination = destination }
    }

    /// The merged stream: each proxy's events, ids made unique across proxies, the tapped proxy's
    /// own workload filled in (as source of its outbound requests, destination of its inbound
    /// ones). Ends after `limit` requests ended (0: never), or when every proxy's tap ended; when its
    /// reader stops reading it, the proxies' taps are closed. With `heartbeat`, a `.heartbeat` comes
    /// every `heartbeat` too.
    public func stream(_ proxies: [ProxyStatus], _ request: Weft_Tap_V1_ObserveRequest,
                       heartbeat: Duration? = nil) -> AsyncStream<Item> {
        let (stream, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingNewest(4096))
        let limit = request.limit
        let ids = IDAllocator()
        let task = Task {
            await withTaskGroup(of: Void.self) { tasks in
                for (index, proxy) in proxies.enumerated() {
                    tasks.addTask {
                        do {
                            try await observe(proxy, request) { event in
                                var event = event
                                var ended = false
                                if case .responseEnd = event.event { ended = true }
                                event.context.id = ids.id(proxy: index, id: event.context.id, ended: ended)
                                let own = Weft_Tap_V1_Peer.with {
                                    $0.namespace = proxy.namespace
                                    $0.workload = proxy.workload
                                }
                                if event.context.direction == .outbound {
                                    event.context.source.namespace = own.namespace
                                    event.context.source.workload = own.workload
                                } else if event.context.destination.workload.isEmpty {
                                    event.context.destination.namespace = own.namespace
                                    event.context.destination.workload = own.workload
                                }
                                continuation.yield(.event(event))
                                if ended, limit > 0, ids.ended >= limit { continuation.finish() }
                            }
                        } catch is CancellationError {
                        } catch {
                            let message = (error as? RPCError).map { "\($0.code): \($0.message)" } ?? "\(error)"
                            continuation.yield(.proxyFailed(proxy: "\(proxy.namespace)/\(proxy.workload)/\(proxy.instance) at \(proxy.tapAddress)", message: message))
                        }
                    }
                }
            }
            continuation.finish()
        }
        let heartbeats = heartbeat.map { interval in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    continuation.yield(.heartbeat)
                }
            }
        }
        continuation.onTermination = { _ in
            task.cancel()
            heartbeats?.cancel()
        }
        return stream
    }

    private func observe(_ proxy: ProxyStatus, _ request: Weft_Tap_V1_ObserveRequest,
                         each: @escaping @Sendable (Weft_Tap_V1_TapEvent) -> Void) async throws {
        guard let address = ListenAddress(parsing: proxy.tapAddress) else { return }
        var options = CallOptions.defaults
        options.waitForReady = false
        let transport = try HTTP2ClientTransport.Posix(target: address.grpcTarget, transportSecurity: .plaintext, eventLoopGroup: group)
        try await withGRPCClient(transport: transport) { client in
            let tap = Weft_Tap_V1_Tap.Client(wrapping: client)
            try await tap.observe(request, options: options) { response in
                for try await event in response.messages { each(event) }
            }
        }
    }
}

/// Request ids unique across the merged stream, and the count of requests that ended.
private final class IDAllocator: @unchecked Sendable {
    private let lock = NSLock()
    private var next: UInt64 = 0
    private var live: [UInt64: UInt64] = [:]
    private(set) var endedCount: UInt64 = 0

    var ended: UInt64 { lock.withLock { endedCount } }

    func id(proxy: Int, id: UInt64, ended: Bool) -> UInt64 {
        lock.withLock {
            let key = UInt64(proxy) << 48 | (id & 0xFFFF_FFFF_FFFF)
            let mapped: UInt64
            if let known = live[key] {
                mapped = known
            } else {
                next += 1
                mapped = next
                live[key] = mapped
            }
            if ended {
                live[key] = nil
                endedCount += 1
            }
            return mapped
        }
    }
}
