import HTTPTypes
import Testing
import WeftFilter
import WeftFilterTesting
import WeftFilters
@testable import WeftHeaderRewrite
import Yams

@Suite struct HeaderRewriteFilterTests {
    var registry: FilterRegistry {
        var registry = FilterRegistry.builtin()
        registry.register(HeaderRewriteFactory())
        return registry
    }

    let chain = """
        - name: route
          config:
            routes:
              - name: user-by-id
                match: { path: { regex: '/users/(?<id>[0-9]+)' } }
                backend: users
        - name: header-rewrite
          config:
            routes: [user-by-id]
            request:
              set: { x-user-id: "${id}", x-route: "route=${route}" }
              remove: [x-debug]
            response:
              set: { x-served-by: weft }
              remove: [server]
        """

    @Test func setsRequestHeadersFromTheRoutesNamedCaptures() throws {
        let harness = try FilterHarness(registry: registry, yaml: chain, backendNames: ["users"])
        var fields = HTTPFields()
        fields[HTTPField.Name("x-debug")!] = "1"
        let result = harness.sendRequest(HTTPRequest(method: .get, scheme: "http", authority: "api", path: "/users/42", headerFields: fields))
        let forwarded = try #require(result.forwardedRequest)
        #expect(forwarded.headerFields[HTTPField.Name("x-user-id")!] == "42")
        #expect(forwarded.headerFields[HTTPField.Name("x-route")!] == "route=user-by-id")
        #expect(forwarded.headerFields[HTTPField.Name("x-debug")!] == nil)
    }

    @Test func rewritesResponseHeaders() throws {
        let harness = try FilterHarness(registry: registry, yaml: chain, backendNames: ["users"])
        let sent = harness.sendRequest(HTTPRequest(method: .get, scheme: "http", authority: "api", path: "/users/1"))
        let received = harness.sendResponse(HTTPResponse(status: .ok, headerFields: [.server: "nginx"]), for: sent.context)
        #expect(received.response.headerFields[.server] == nil)
        #expect(received.response.headerFields[HTTPField.Name("x-served-by")!] == "weft")
    }

    @Test func leavesRequestsOnOtherRoutesAlone() throws {
        let harness = try FilterHarness(registry: registry, yaml: chain, backendNames: ["users"])
        var fields = HTTPFields()
        fields[HTTPField.Name("x-debug")!] = "1"
        let result = harness.sendRequest(HTTPRequest(method: .get, scheme: "http", authority: "api", path: "/teams", headerFields: fields))
        #expect(result.forwardedRequest?.headerFields[HTTPField.Name("x-debug")!] == "1")
        #expect(result.forwardedRequest?.headerFields[HTTPField.Name("x-user-id")!] == nil)
    }

    @Test func aTemplateWithAMissingVariableLeavesTheHeaderUnset() throws {
        let harness = try FilterHarness(registry: registry, yaml: """
            - name: header-rewrite
              config: { request: { set: { x-user-id: "${id}", x-env: prod } } }
            """)
        let result = harness.sendRequest(HTTPRequest(method: .get, scheme: "http", authority: "api", path: "/"))
        #expect(result.forwardedRequest?.headerFields[HTTPField.Name("x-user-id")!] == nil)
        #expect(result.forwardedRequest?.headerFields[HTTPField.Name("x-env")!] == "prod")
    }

    @Test func anUnclosedTemplateIsAConfigErrorNamingTheHeader() {
        #expect {
            try FilterHarness(registry: registry, yaml: """
                - name: header-rewrite
                  config: { request: { set: { x-user-id: "${id" } } }
                """)
        } throws: { error in
            let error = error as! FilterConfigError
            return error.filter == "header-rewrite" && error.field == "request.set.x-user-id"
        }
    }

    @Test func anInvalidHeaderNameIsAConfigError() {
        #expect {
            try FilterHarness(registry: registry, yaml: """
                - name: header-rewrite
                  config: { response: { remove: ["bad header"] } }
                """)
        } throws: { error in
            (error as! FilterConfigError).field == "response.remove[0]"
        }
    }
}

@Suite struct HeaderTemplateTests {
    @Test func aTemplateWithoutVariablesIsResolvedAtConfigTime() throws {
        let template = try HeaderTemplate("weft-proxy/1")
        #expect(template.constantValue == "weft-proxy/1")
        #expect(template.render { _ in Issue.record("a constant must not look variables up"); return nil } == "weft-proxy/1")
    }

    @Test func variablesAreFilledInOrder() throws {
        let template = try HeaderTemplate("user-${id}@${route}")
        #expect(template.constantValue == nil)
        #expect(template.render { ["id": "42", "route": "users"][$0] } == "user-42@users")
    }
}
