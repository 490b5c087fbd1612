import HTTPTypes
import Testing
import WeftRegex
@testable import WeftRouting

@Suite struct RouteTableTests {
    let scratch = MatchScratch()

    func request(_ method: HTTPRequest.Method = .get, _ authority: String = "users.svc:8080", path: String, headers: HTTPFields = [:]) -> HTTPRequest {
        HTTPRequest(method: method, scheme: "http", authority: authority, path: path, headerFields: headers)
    }

    @Test func firstMatchingRouteWinsInConfigOrder() throws {
        let table = RouteTable<String>([
            .init(match: RouteMatch(path: .prefix("/users")), target: "prefix"),
            .init(match: RouteMatch(path: .regex(try PCRE2Pattern("/users/[0-9]+"))), target: "regex"),
        ])
        // Both match; the earlier one wins even though the later one is more specific.
        #expect(table.find(request(path: "/users/1"), scratch: scratch)?.target == "prefix")
    }

    @Test func identicalRoutesResolveToTheFirst() {
        let table = RouteTable<String>([
            .init(match: RouteMatch(path: .exact("/a")), target: "first"),
            .init(match: RouteMatch(path: .exact("/a")), target: "second"),
        ])
        #expect(table.find(request(path: "/a"), scratch: scratch)?.index == 0)
    }

    @Test func everyConditionMustHold() throws {
        let table = RouteTable<String>([
            .init(match: RouteMatch(methods: [.post], authority: .exact("users.svc"), path: .prefix("/users"),
                                    headers: [HeaderMatch(name: HTTPField.Name("x-canary")!, value: .exact("1"))]),
                  target: "canary-post"),
            .init(match: RouteMatch(), target: "default"),
        ])
        var headers = HTTPFields()
        headers[HTTPField.Name("x-canary")!] = "1"
        #expect(table.find(request(.post, path: "/users", headers: headers), scratch: scratch)?.target == "canary-post")
        #expect(table.find(request(.get, path: "/users", headers: headers), scratch: scratch)?.target == "default")
        #expect(table.find(request(.post, "teams.svc", path: "/users", headers: headers), scratch: scratch)?.target == "default")
        #expect(table.find(request(.post, path: "/users"), scratch: scratch)?.target == "default")
    }

    @Test func authorityMatchesTheHostIgnoringPortAndCase() {
        let table = RouteTable<String>([.init(match: RouteMatch(authority: .exact("Users.SVC")), target: "users")])
        #expect(table.find(request(.get, "USERS.svc:8080", path: "/"), scratch: scratch)?.target == "users")
        #expect(table.find(request(.get, "users.svc", path: "/"), scratch: scratch)?.target == "users")
        #expect(table.find(request(.get, "users.svc.evil", path: "/"), scratch: scratch) == nil)
    }

    @Test func pathMatchingIgnoresTheQueryString() throws {
        let table = RouteTable<String>([.init(match: RouteMatch(path: .regex(try PCRE2Pattern("/search"))), target: "search")])
        #expect(table.find(request(path: "/search?q=/etc/passwd"), scratch: scratch)?.target == "search")
    }

    @Test func headerPresenceAloneCanMatch() {
        let table = RouteTable<String>([.init(match: RouteMatch(headers: [HeaderMatch(name: HTTPField.Name("x-debug")!, value: nil)]), target: "debug")])
        var headers = HTTPFields()
        headers[HTTPField.Name("x-debug")!] = "anything"
        #expect(table.find(request(path: "/", headers: headers), scratch: scratch)?.target == "debug")
        #expect(table.find(request(path: "/"), scratch: scratch) == nil)
    }

    @Test func namedCapturesComeFromTheWinningRoute() throws {
        let table = RouteTable<String>([
            .init(match: RouteMatch(authority: .regex(try PCRE2Pattern("(?<service>[a-z]+)\\.svc")),
                                    path: .regex(try PCRE2Pattern("/users/(?<id>[0-9]+)"))), target: "user"),
        ])
        let found = table.find(request(path: "/users/42"), scratch: scratch)
        #expect(found?.captures == ["service": "users", "id": "42"])
    }

    @Test func aRegexThatHitsItsLimitDoesNotMatchAndLaterRoutesStillDo() throws {
        let hostile = try PCRE2Pattern("/(a+)+$", limits: RegexLimits(matchLimit: 10_000, depthLimit: 1_000, maxSubjectLength: 64 * 1024))
        let table = RouteTable<String>([
            .init(match: RouteMatch(path: .regex(hostile)), target: "hostile"),
            .init(match: RouteMatch(path: .prefix("/")), target: "fallback"),
        ])
        let before = RegexLimits.hits
        #expect(table.find(request(path: "/" + String(repeating: "a", count: 30_000) + "!"), scratch: scratch)?.target == "fallback")
        #expect(RegexLimits.hits > before)
    }

    @Test func hostOfAnAuthority() {
        #expect(RequestView.host(of: "Example.com:8080") == "example.com")
        #expect(RequestView.host(of: "[::1]:80") == "[::1]")
        #expect(RequestView.host(of: "svc") == "svc")
    }

    // MARK: The first-segment index

    @Test func theIndexPinsOnlyConditionsWhoseFirstSegmentIsLiteral() throws {
        func pinned(_ matcher: StringMatcher) -> String? { RouteTable<Int>.pinnedSegment(matcher) }
        #expect(pinned(.exact("/users")) == "users")
        #expect(pinned(.exact("/")) == "")
        #expect(pinned(.prefix("/users/")) == "users")
        #expect(pinned(.prefix("/users")) == nil, "could be /usersettings")
        #expect(pinned(.regex(try PCRE2Pattern("/service-9/items/(?<id>[0-9]+)"))) == "service-9")
        #expect(pinned(.regex(try PCRE2Pattern("/users?/x"))) == nil, "the quantifier makes the r optional")
        #expect(pinned(.regex(try PCRE2Pattern("/a/x|/b/y"))) == nil, "top-level alternation")
        #expect(pinned(.regex(try PCRE2Pattern("/a/(x|y)"))) == "a", "alternation inside a group is fine")
        #expect(pinned(.regex(try PCRE2Pattern("(?i)/a/x"))) == nil)
        #expect(pinned(.regex(try PCRE2Pattern("/a/x", anchoring: .search))) == nil, "unanchored patterns match anywhere")
        #expect(pinned(.exact("*")) == nil)
    }

    @Test func indexedAndUnindexedRoutesStillResolveInConfigOrder() throws {
        let filler = (0..<RouteTable<String>.indexThreshold).map {
            RouteTable<String>.Entry(match: RouteMatch(path: .exact("/filler-\($0)/x")), target: "filler")
        }
        let table = RouteTable<String>(filler + [
            .init(match: RouteMatch(path: .regex(try PCRE2Pattern("/b/[0-9]+"))), target: "b-numbers"),
            .init(match: RouteMatch(methods: [.post]), target: "any-post"),
            .init(match: RouteMatch(path: .prefix("/a/")), target: "a"),
            .init(match: RouteMatch(path: .prefix("/b")), target: "b-prefix"),
            .init(match: RouteMatch(path: .exact("/b/7")), target: "b-7"),
        ])
        #expect(!table.bySegment.isEmpty && !table.unindexed.isEmpty, "both kinds are present")
        #expect(table.find(request(path: "/b/7"), scratch: scratch)?.target == "b-numbers")
        #expect(table.find(request(.post, path: "/a/1"), scratch: scratch)?.target == "any-post", "an unindexed route before the indexed one wins")
        #expect(table.find(request(path: "/a/1"), scratch: scratch)?.target == "a")
        #expect(table.find(request(path: "/b/x"), scratch: scratch)?.target == "b-prefix")
        #expect(table.find(request(path: "/bees"), scratch: scratch)?.target == "b-prefix")
        #expect(table.find(request(path: "/c"), scratch: scratch) == nil)
        #expect(table.find(request(path: "*"), scratch: scratch) == nil)
    }

    @Test func aHundredRouteTableFindsTheLastRouteAndMissesLikeALinearScan() throws {
        let entries = try (0..<100).map { index in
            RouteTable<Int>.Entry(match: RouteMatch(path: .regex(try PCRE2Pattern("/service-\(index)/items/(?<id>[0-9]+)"))), target: index)
        }
        let table = RouteTable(entries)
        for index in [0, 42, 99] {
            let found = table.find(request(path: "/service-\(index)/items/7"), scratch: scratch)
            #expect(found?.target == index && found?.captures == ["id": "7"])
        }
        #expect(table.find(request(path: "/service-100/items/7"), scratch: scratch) == nil)
        #expect(table.find(request(path: "/service-1/items/x"), scratch: scratch) == nil)
    }
}
