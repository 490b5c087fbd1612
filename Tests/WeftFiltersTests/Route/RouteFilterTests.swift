import HTTPTypes
import Testing
import WeftFilter
import WeftFilterTesting
import WeftFilters
import Yams

@Suite struct RouteFilterTests {
    let registry = FilterRegistry.builtin()

    func harness(_ yaml: String, backends: Set<String> = ["users", "teams"]) throws -> FilterHarness {
        try FilterHarness(registry: registry, yaml: yaml, backendNames: backends)
    }

    func build(_ config: String, backends: Set<String> = ["users"]) throws {
        _ = try registry.makeFilter(FilterSpec(name: "route", config: try Yams.compose(yaml: config)!),
                                    context: FilterBuildContext(direction: .outbound, backendNames: backends))
    }

    @Test func theMatchingRouteIsRecordedWithBackendTimeoutAndCaptures() throws {
        let harness = try harness("""
            - name: route
              config:
                routes:
                  - name: user-by-id
                    match: { method: GET, path: { regex: '/users/(?<id>[0-9]+)' } }
                    backend: users
                    timeout: 2s
                  - name: teams
                    match: { path: { prefix: /teams } }
                    backend: teams
            """)
        let result = harness.sendRequest(HTTPRequest(method: .get, scheme: "http", authority: "api", path: "/users/7"))
        #expect(result.context.route == RouteDecision(name: "user-by-id", backend: "users", timeout: .seconds(2), captures: ["id": "7"]))
        let teams = harness.sendRequest(HTTPRequest(method: .post, scheme: "http", authority: "api", path: "/teams/x"))
        #expect(teams.context.route?.name == "teams")
        #expect(teams.context.route?.timeout == nil)
    }

    @Test func unmatchedRequestsPassThroughByDefault() throws {
        let harness = try harness("""
            - name: route
              config:
                routes: [{ name: users, match: { path: /users }, backend: users }]
            """)
        let result = harness.sendRequest(HTTPRequest(method: .get, scheme: "http", authority: "api", path: "/other"))
        #expect(result.forwardedRequest != nil)
        #expect(result.context.route == nil)
    }

    @Test func unmatchedRequestsAreRejectedWith404WhenConfigured() throws {
        let harness = try harness("""
            - name: route
              config:
                onNoMatch: reject
                routes: [{ name: users, match: { path: /users }, backend: users }]
            """)
        let result = harness.sendRequest(HTTPRequest(method: .get, scheme: "http", authority: "api", path: "/other"))
        #expect(result.localResponse?.status == .notFound)
        #expect(result.localResponse?.headerFields[.weftProxyError] == "no route matches GET api/other")
    }

    @Test func anUnknownBackendIsAnErrorNamingTheField() {
        #expect {
            try build("routes: [{ name: a, backend: nowhere }]")
        } throws: { error in
            let error = error as! FilterConfigError
            return error.filter == "route" && error.field == "routes[0].backend" && error.message.contains("unknown backend 'nowhere'")
        }
    }

    @Test func aBadPatternIsAnErrorWithFieldOffsetAndMessage() {
        #expect {
            try build("routes: [{ name: a, backend: users, match: { path: { regex: '/users/(?<id>[0-9+' } } }]")
        } throws: { error in
            let error = error as! FilterConfigError
            return error.field == "routes[0].match.path.regex" && error.message.contains("offset 18")
        }
    }

    @Test func aMisspelledFieldIsRejectedNotIgnored() {
        #expect {
            try build("routes: [{ name: a, backend: users, timout: 2s }]")
        } throws: { error in
            let error = error as! FilterConfigError
            return error.field == "routes[0].timout" && error.message.contains("unknown field 'timout'")
        }
    }

    @Test func duplicateRouteNamesAreRejected() {
        #expect {
            try build("routes: [{ name: a, backend: users }, { name: a, backend: users }]")
        } throws: { error in
            (error as! FilterConfigError).field == "routes[1].name"
        }
    }

    @Test func aStringMatchNeedsExactlyOneKind() {
        #expect {
            try build("routes: [{ name: a, backend: users, match: { path: { exact: /a, prefix: /b } } }]")
        } throws: { error in
            (error as! FilterConfigError).field == "routes[0].match.path"
        }
    }

    @Test func anInvalidMethodIsNamed() {
        #expect {
            try build("routes: [{ name: a, backend: users, match: { method: [GET, 'NOT A METHOD'] } }]")
        } throws: { error in
            (error as! FilterConfigError).field == "routes[0].match.method[1]"
        }
    }

    @Test func aRetryPolicyIsRejectedUntilTheRetryFilterExists() {
        #expect {
            try build("routes: [{ name: a, backend: users, retry: { attempts: 3 } }]")
        } throws: { error in
            let error = error as! FilterConfigError
            return error.field == "routes[0].retry" && error.message.contains("retry filter")
        }
    }
}
