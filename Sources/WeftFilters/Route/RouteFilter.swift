import HTTPTypes
import NIOCore
import WeftFilter
import WeftRouting

/// Picks the route for each request (first match in config order) and records the decision
/// in ``RequestContext/route``; the proxy's terminal router sends the request to its backend.
public struct RouteFilter: HTTPFilter {
    /// What a matching route decides.
    public struct Target: Sendable {
        var name: String
        var backend: String
        var timeout: TimeAmount?
    }

    let table: RouteTable<Target>
    let onNoMatch: NoMatchPolicy

    public func onRequestHead(_ request: inout HTTPRequest, context: RequestContext) -> FilterAction {
        if let found = table.find(request, scratch: context.matchScratch) {
            context.route = RouteDecision(
                name: found.target.name, backend: found.target.backend,
                timeout: found.target.timeout, captures: found.captures)
            return .continue
        }
        switch onNoMatch {
        case .passthrough:
            return .continue
        case .reject:
            let target = "\(request.method.rawValue) \(request.authority ?? "")\(request.path ?? "")"
            return .respond(.proxyError(.notFound, "no route matches \(target)"))
        }
    }
}
