import HTTPTypes
import WeftFilter

/// Sets and removes request and response headers, filling values from the matched route.
struct HeaderRewriteFilter: HTTPFilter {
    struct Edits: Sendable {
        var set: [(HTTPField.Name, HeaderTemplate)]
        var remove: [HTTPField.Name]

        func apply(to fields: inout HTTPFields, route: RouteDecision?) {
            for name in remove { fields[name] = nil }
            for (name, template) in set {
                let value = template.render { variable in
                    switch variable {
                    case "route": return route?.name
                    case "backend": return route?.backend
                    default: return route?.captures[variable]
                    }
                }
                if let value { fields[name] = value }
            }
        }
    }

    let routes: Set<String>?
    let request: Edits
    let response: Edits

    private func applies(_ context: RequestContext) -> Bool {
        guard let routes else { return true }
        return context.route.map { routes.contains($0.name) } ?? false
    }

    func onRequestHead(_ request: inout HTTPRequest, context: RequestContext) -> FilterAction {
        if applies(context) { self.request.apply(to: &request.headerFields, route: context.route) }
        return .continue
    }

    func onResponseHead(_ response: inout HTTPResponse, context: RequestContext) -> StreamAction {
        if applies(context) { self.response.apply(to: &response.headerFields, route: context.route) }
        return .continue
    }
}
