import HTTPTypes
import Testing
import WeftFilter
import WeftRegex
import WeftRouting
@testable import WeftTelemetry

@Suite struct TapPredicateTests {
    let scratch = MatchScratch()

    func request(_ method: HTTPRequest.Method = .get, authority: String = "web:8080", path: String = "/api/vote?choice=x",
                 source: String = "10.0.0.5:4321", direction: TrafficDirection = .outbound,
                 upstream: UpstreamTarget? = UpstreamTarget(endpoint: "10.0.0.7:8080", service: ServiceIdentity(
                    service: "voting", namespace: "emojivoto", workload: WorkloadRef(kind: "deploy", name: "voting")))) -> TappedRequest {
        TappedRequest(direction: direction, request: HTTPRequest(method: method, scheme: "http", authority: authority, path: path),
                      source: source, upstream: upstream)
    }

    @Test func pathMatchesIgnoreTheQueryAndRegexesMatchTheWholePath() throws {
        #expect(TapPredicate.path(.prefix("/api/")).matches(request(), scratch: scratch))
        #expect(TapPredicate.path(.exact("/api/vote")).matches(request(), scratch: scratch))
        #expect(TapPredicate.path(.regex(try PCRE2Pattern("/api/(vote|list)"))).matches(request(), scratch: scratch))
        #expect(!TapPredicate.path(.regex(try PCRE2Pattern("/api"))).matches(request(), scratch: scratch))
    }

    @Test func destinationMatchesServiceNamespaceWorkloadAndAddress() {
        let voting = TapPredicate.destination(.init(namespace: "emojivoto", workload: WorkloadRef(parsing: "deployment/voting")))
        #expect(voting.matches(request(), scratch: scratch))
        #expect(!TapPredicate.destination(.init(workload: WorkloadRef(parsing: "deploy/emoji"))).matches(request(), scratch: scratch))
        #expect(TapPredicate.destination(.init(service: "voting", address: "10.0.0.7:8080")).matches(request(), scratch: scratch))
        // A request the proxy answered itself went nowhere: no destination matches it.
        #expect(!voting.matches(request(upstream: nil), scratch: scratch))
    }

    @Test func allAnyAndNotCombine() {
        let getOrPost = TapPredicate.any([.method(.get), .method(.post)])
        let notHealth = TapPredicate.not(.path(.prefix("/health")))
        let both = TapPredicate.all([getOrPost, notHealth, .direction(.outbound), .source(.prefix("10.0.0.5:"))])
        #expect(both.matches(request(), scratch: scratch))
        #expect(!both.matches(request(.delete), scratch: scratch))
        #expect(!both.matches(request(path: "/healthz"), scratch: scratch))
        #expect(!both.matches(request(direction: .inbound), scratch: scratch))
        #expect(!both.matches(request(source: "10.0.0.6:1"), scratch: scratch))
        #expect(TapPredicate.everything.matches(request(), scratch: scratch))
    }

    @Test func authorityMatchesTheLowercasedHostWithoutPort() {
        #expect(TapPredicate.authority(.exact("web")).matches(request(authority: "WEB:8080"), scratch: scratch))
        #expect(!TapPredicate.authority(.exact("web")).matches(request(authority: "emoji:8080"), scratch: scratch))
    }
}
