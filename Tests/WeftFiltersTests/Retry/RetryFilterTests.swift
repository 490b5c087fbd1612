import HTTPTypes
import NIOCore
import Testing
import WeftFilter
import WeftFilterTesting
import WeftFilters
import WeftTelemetry
import Yams

@Suite struct RetryFilterTests {
    let registry = FilterRegistry.builtin()

    func harness(_ retryConfig: String) throws -> FilterHarness {
        try FilterHarness(registry: registry, yaml: """
            - name: route
              config:
                routes:
                  - { name: votes, match: { path: { prefix: /vote } }, backend: voting }
                  - { name: list, match: { path: { prefix: /list } }, backend: voting }
            - name: retry
              config: \(retryConfig)
            """, backendNames: ["voting"])
    }

    func request(_ method: HTTPRequest.Method, _ path: String, grpc: Bool = false) -> HTTPRequest {
        var fields = HTTPFields()
        if grpc { fields[.contentType] = "application/grpc" }
        return HTTPRequest(method: method, scheme: "http", authority: "voting", path: path, headerFields: fields)
    }

    @Test func aRouteWithAPolicyGetsItsDirective() throws {
        let harness = try harness("{ policies: [{ routes: [votes], maxRetries: 3, on: [5xx, '429', connect-failure], perTryTimeout: 200ms }] }")
        let directive = try #require(harness.sendRequest(request(.get, "/vote/a")).context.retry)
        #expect(directive.maxRetries == 3)
        #expect(directive.perTryTimeout == .milliseconds(200))
        #expect(directive.conditions.retries(status: 503, grpcStatus: nil))
        #expect(directive.conditions.retries(status: 429, grpcStatus: nil))
        #expect(!directive.conditions.retries(status: 404, grpcStatus: nil))
        #expect(directive.conditions.connectFailure && directive.conditions.perTryTimeout && !directive.conditions.reset)
        #expect(harness.sendRequest(request(.get, "/list")).context.retry == nil, "no policy for this route")
    }

    @Test func nonIdempotentRequestsAreRetriedOnlyWhenThePolicySaysSo() throws {
        let cautious = try harness("{ policies: [{ routes: [votes] }] }")
        #expect(cautious.sendRequest(request(.post, "/vote/a")).context.retry == nil)
        #expect(cautious.sendRequest(request(.put, "/vote/a")).context.retry != nil, "PUT is idempotent")
        let bold = try harness("{ policies: [{ routes: [votes], retryNonIdempotent: true }] }")
        #expect(bold.sendRequest(request(.post, "/vote/a")).context.retry != nil)
    }

    @Test func grpcCallsAreRetriedWhenThePolicyNamesGRPCStatuses() throws {
        let harness = try harness("{ policies: [{ routes: [votes], grpc: [unavailable, RESOURCE_EXHAUSTED, 4] }] }")
        let directive = try #require(harness.sendRequest(request(.post, "/vote/a", grpc: true)).context.retry)
        #expect(directive.conditions.grpcStatuses == [14, 8, 4])
        #expect(directive.conditions.retries(status: 200, grpcStatus: 14))
        #expect(!directive.conditions.retries(status: 200, grpcStatus: 5))
    }

    @Test func badPoliciesNameTheirField() {
        func failure(_ config: String) -> FilterConfigError? {
            do {
                _ = try harness(config)
                return nil
            } catch let error as FilterConfigError {
                return error
            } catch {
                return nil
            }
        }
        #expect(failure("{ policies: [{ routes: [nope] }] }")?.field == "policies[0].routes[0]")
        #expect(failure("{ policies: [{ routes: [nope] }] }")?.message.contains("routes: list, votes") == true)
        #expect(failure("{ policies: [{ routes: [votes], on: [sometimes] }] }")?.field == "policies[0].on[0]")
        #expect(failure("{ policies: [{ routes: [votes], grpc: [sad] }] }")?.field == "policies[0].grpc[0]")
        #expect(failure("{ policies: [{ routes: [votes] }, { routes: [votes] }] }")?.message.contains("two retry policies") == true)
        #expect(failure("{ policies: [{ routes: [votes], maxRetries: 50 }] }")?.field == "policies[0].maxRetries")
        #expect(failure("{ budget: { window: 100ms } }")?.field == "budget.window")
    }

    @Test func aRetryFilterBeforeTheRouteFilterKnowsNoRoutes() throws {
        #expect(throws: FilterConfigError.self) {
            _ = try FilterHarness(registry: registry, yaml: """
                - name: retry
                  config: { policies: [{ routes: [votes] }] }
                - name: route
                  config: { routes: [{ name: votes, backend: voting }] }
                """, backendNames: ["voting"])
        }
    }
}

@Suite struct RetryBudgetTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    @Test func retriesAreBoundedByTheRatioPlusTheFloorOverTheWindow() {
        let budget = RetryBudget(ratio: 0.2, minPerSecond: 10, windowSeconds: 10)
        for _ in 0..<1_000 { budget.recordRequest(now: start) }
        // 10/s × 10 s + 20% of 1 000 = 300 retries, then no more.
        let granted = (0..<1_000).filter { _ in budget.tryWithdraw(now: start) }.count
        #expect(granted == 300)
        #expect(budget.retriesInWindow == 300)
    }

    @Test func theWindowSlidesAndOldRetriesStopCounting() {
        let budget = RetryBudget(ratio: 0, minPerSecond: 1, windowSeconds: 2)
        #expect(budget.tryWithdraw(now: start))
        #expect(budget.tryWithdraw(now: start))
        #expect(!budget.tryWithdraw(now: start), "2 per 2 s window")
        #expect(budget.tryWithdraw(now: start + .seconds(2)), "the first second left the window")
    }

    @Test func backoffGrowsExponentiallyWithFullJitterUpToTheMax() {
        let directive = RetryDirective(maxRetries: 5, conditions: RetryConditions(), perTryTimeout: nil,
                                       backoffBase: .milliseconds(10), backoffMax: .milliseconds(50),
                                       maxBufferedBody: 0, budget: RetryBudget())
        for retry in 1...6 {
            let ceiling = min(50, 10 << (retry - 1))
            for _ in 0..<50 {
                let wait = directive.backoff(beforeRetry: retry)
                #expect(wait >= .zero && wait <= .milliseconds(Int64(ceiling)))
            }
        }
    }
}
