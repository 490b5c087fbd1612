import Benchmark
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import WeftFilter
import WeftFilters
import WeftHeaderRewrite
import WeftRegex
import WeftRouting
import WeftTelemetry
import Yams

/// Route tables of `count` PCRE2 path rules (`/service-N/items/(?<id>[0-9]+)`).
func routeTable(_ count: Int) -> RouteTable<Int> {
    RouteTable((0..<count).map { index in
        .init(match: RouteMatch(path: .regex(try! PCRE2Pattern("/service-\(index)/items/(?<id>[0-9]+)"))), target: index)
    })
}

func request(path: String) -> HTTPRequest {
    var fields = HTTPFields()
    fields[.userAgent] = "bench/1.0"
    fields[.accept] = "*/*"
    return HTTPRequest(method: .get, scheme: "http", authority: "api.emojivoto:8080", path: path, headerFields: fields)
}

func registry() -> FilterRegistry {
    var registry = FilterRegistry.builtin()
    registry.register(HeaderRewriteFactory())
    return registry
}

func chainSpecs(routes: Int) -> [FilterSpec] {
    let routesYAML = (0..<routes).map { "{ name: r\($0), match: { path: { regex: '/service-\($0)/items/(?<id>[0-9]+)' } }, backend: svc }" }
        .joined(separator: ", ")
    let routeConfig = try! Yams.compose(yaml: "routes: [\(routesYAML)]")!
    let rewriteConfig = try! Yams.compose(yaml: "request: { set: { x-id: '${id}' } }\nresponse: { set: { x-route: '${route}' } }")!
    return [FilterSpec(name: "route", config: routeConfig), FilterSpec(name: "header-rewrite", config: rewriteConfig)]
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal, .instructions], warmupIterations: 100,
                                           scalingFactor: .kilo, maxDuration: .seconds(3))

    for count in [1, 10, 100] {
        let table = routeTable(count)
        let scratch = MatchScratch()
        let hit = request(path: "/service-\(count - 1)/items/42")
        let miss = request(path: "/nowhere/items/42")
        Benchmark("PCRE2 route match: \(count) rules, hit on the last") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(table.find(hit, scratch: scratch))
            }
        }
        Benchmark("PCRE2 route match: \(count) rules, miss") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(table.find(miss, scratch: scratch))
            }
        }
    }

    let plainTable = RouteTable((0..<100).map { index in
        RouteTable<Int>.Entry(match: RouteMatch(path: .regex(try! PCRE2Pattern("/service-\(index)/items/[0-9]+"))), target: index)
    })
    let plainScratch = MatchScratch()
    let plainHit = request(path: "/service-99/items/42")
    Benchmark("PCRE2 route match: 100 rules without captures, hit on the last") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(plainTable.find(plainHit, scratch: plainScratch))
        }
    }

    let pattern = try! PCRE2Pattern("/service-1/items/(?<id>[0-9]+)")
    let path = "/nowhere/items/42"[...]
    let patternScratch = MatchScratch()
    Benchmark("PCRE2 one pattern, no match (JIT)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(pattern.match(path, using: patternScratch))
        }
    }

    let registry = registry()
    let context = FilterBuildContext(direction: .outbound, backendNames: ["svc"])
    Benchmark("Filter chain: build (route with 10 rules + header-rewrite)", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try registry.makeChain(chainSpecs(routes: 10), context: context))
        }
    }

    let chain = try! registry.makeChain(chainSpecs(routes: 10), context: context)
    let loop = EmbeddedEventLoop()
    let scratch = MatchScratch()
    Benchmark("Filter chain: run request and response heads (route + header-rewrite)") { benchmark in
        for _ in benchmark.scaledIterations {
            let requestContext = RequestContext(direction: .outbound, eventLoop: loop, remoteAddress: nil, matchScratch: scratch)
            var head = request(path: "/service-9/items/42")
            blackHole(chain.requestHead(&head, context: requestContext))
            var response = HTTPResponse(status: .ok)
            blackHole(chain.responseHead(&response, context: requestContext))
        }
    }

    let routeOnly = try! registry.makeChain([chainSpecs(routes: 10)[0]], context: context)
    Benchmark("Filter: route (10 rules), request head") { benchmark in
        for _ in benchmark.scaledIterations {
            let requestContext = RequestContext(direction: .outbound, eventLoop: loop, remoteAddress: nil, matchScratch: scratch)
            var head = request(path: "/service-9/items/42")
            blackHole(routeOnly.requestHead(&head, context: requestContext))
        }
    }

    // Observability filters: one whole request each (dispatch, response head, complete).
    let telemetry = Telemetry()
    let observed = FilterRegistry.builtin(telemetry: telemetry)
    let target = UpstreamTarget(endpoint: "10.0.0.7:8080", service: ServiceIdentity(service: "svc", namespace: "emojivoto"))
    func runWholeRequest(_ chain: FilterChain) {
        let requestContext = RequestContext(direction: .outbound, eventLoop: loop, remoteAddress: nil, matchScratch: scratch)
        var head = request(path: "/service-9/items/42")
        blackHole(chain.requestHead(&head, context: requestContext))
        chain.dispatch(to: target, context: requestContext)
        var response = HTTPResponse(status: .ok)
        blackHole(chain.responseHead(&response, context: requestContext))
        chain.complete(.responded(status: 200), context: requestContext)
    }
    let bare = FilterChain(names: [], filters: [])
    Benchmark("Filter: none (baseline for the observability filters), whole request") { benchmark in
        for _ in benchmark.scaledIterations { runWholeRequest(bare) }
    }
    let metricsChain = try! observed.makeChain([FilterSpec(name: "metrics")], context: context)
    Benchmark("Filter: metrics, whole request") { benchmark in
        for _ in benchmark.scaledIterations { runWholeRequest(metricsChain) }
    }
    let retrySpecs = [
        FilterSpec(name: "route", config: try! Yams.compose(yaml: "routes: [{ name: r, match: { path: { prefix: /service-9/ } }, backend: svc }]")!),
        FilterSpec(name: "retry", config: try! Yams.compose(yaml: "policies: [{ routes: [r], maxRetries: 2 }]")!),
    ]
    let routeOnlyChain = try! observed.makeChain([retrySpecs[0]], context: context)
    Benchmark("Filter: route (1 prefix rule), whole request (baseline for retry)") { benchmark in
        for _ in benchmark.scaledIterations { runWholeRequest(routeOnlyChain) }
    }
    let retryChain = try! observed.makeChain(retrySpecs, context: FilterBuildContext(direction: .outbound, backendNames: ["svc"]))
    Benchmark("Filter: route + retry (policy on the route, success path), whole request") { benchmark in
        for _ in benchmark.scaledIterations { runWholeRequest(retryChain) }
    }
    let tapChain = try! observed.makeChain([FilterSpec(name: "tap")], context: context)
    Benchmark("Filter: tap, whole request, nobody tapping") { benchmark in
        for _ in benchmark.scaledIterations { runWholeRequest(tapChain) }
    }
    Benchmark("Filter: tap, whole request, one tapper matching nothing") { benchmark in
        let tap = telemetry.tap.subscribe(.path(.prefix("/elsewhere")))
        defer { telemetry.tap.unsubscribe(tap) }
        for _ in benchmark.scaledIterations { runWholeRequest(tapChain) }
    }
    Benchmark("Filter: tap, whole request, one tapper matching all (3 events queued)") { benchmark in
        let tap = telemetry.tap.subscribe(.everything, maxRPS: .max, bufferSize: 1 << 30)
        defer { telemetry.tap.unsubscribe(tap) }
        for _ in benchmark.scaledIterations { runWholeRequest(tapChain) }
    }

    let detect = try! registry.makeConnectionFilter(FilterSpec(name: "protocol-detect"), context: context)
    let http1Prefix = ByteBuffer(string: "GET /api/list HTTP/1.1\r\nHost: web\r\n\r\n")
    let http2Prefix = ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    Benchmark("Filter: protocol-detect, classify HTTP/1.1 and HTTP/2 prefixes") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(detect.classify(http1Prefix, destinationPort: 8080))
            blackHole(detect.classify(http2Prefix, destinationPort: 8080))
        }
    }

    let rawHead = ByteBuffer(string: "GET /api/vote?choice=:doughnut: HTTP/1.1\r\nHost: web.emojivoto:8080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
        + "Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nCookie: session=abc123\r\n\r\n")
    Benchmark("HTTP/1.1 head parsing (NIO llhttp decoder, 7 headers)") { benchmark in
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
        for _ in benchmark.scaledIterations {
            try channel.writeInbound(rawHead)
            blackHole(try channel.readInbound(as: HTTPServerRequestPart.self))
            blackHole(try channel.readInbound(as: HTTPServerRequestPart.self))
        }
    }
}
