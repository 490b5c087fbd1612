import HTTPTypes
import WeftFilter

/// Registers as `header-rewrite`: validates header names and templates once.
public struct HeaderRewriteFactory: FilterFactory {
    public let name = "header-rewrite"

    public init() {}

    public func makeFilter(config: HeaderRewriteConfig, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter {
        HeaderRewriteFilter(
            routes: config.routes.map(Set.init),
            request: try compile(config.request, field: "request"),
            response: try compile(config.response, field: "response"))
    }

    private func compile(_ edits: HeaderEdits, field: String) throws(FilterConfigError) -> HeaderRewriteFilter.Edits {
        var set: [(HTTPField.Name, HeaderTemplate)] = []
        for (name, value) in edits.set.sorted(by: { $0.key < $1.key }) {
            guard let fieldName = HTTPField.Name(name) else {
                throw FilterConfigError(field: "\(field).set.\(name)", message: "'\(name)' is not a valid header name")
            }
            do {
                set.append((fieldName, try HeaderTemplate(value)))
            } catch {
                throw FilterConfigError(field: "\(field).set.\(name)", message: error.message)
            }
        }
        var remove: [HTTPField.Name] = []
        for (index, name) in edits.remove.enumerated() {
            guard let fieldName = HTTPField.Name(name) else {
                throw FilterConfigError(field: "\(field).remove[\(index)]", message: "'\(name)' is not a valid header name")
            }
            remove.append(fieldName)
        }
        return .init(set: set, remove: remove)
    }
}
