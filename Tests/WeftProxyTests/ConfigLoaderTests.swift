import Foundation
import Testing
import WeftFilter
import WeftProxyMain
@testable import WeftProxy

@Suite struct ConfigLoaderTests {
    let loader = ConfigLoader(registry: CompiledFilters.registry())
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func error(_ yaml: String) -> ConfigError? {
        do {
            _ = try loader.load(text: yaml, file: "proxy.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func theShippedExampleConfigIsValid() throws {
        let snapshot = try loader.load(path: Self.repositoryRoot.appendingPathComponent("config/proxy.yaml").path)
        #expect(snapshot.inboundChain.allNames == ["protocol-detect", "route", "header-rewrite", "metrics", "tap"])
        #expect(snapshot.outboundChain.names == ["route", "header-rewrite", "retry", "metrics", "tap"])
        #expect(snapshot.identity.workload == WorkloadRef(kind: "deployment", name: "demo-app"))
        #expect(snapshot.config.inbound.address == ListenAddress(host: "127.0.0.1", port: 4143))
        #expect(snapshot.config.outbound.address.port == 4140)
        #expect(snapshot.config.admin.address.port == 4191)
        #expect(snapshot.backends["users"]?.endpoints == [ListenAddress(host: "127.0.0.1", port: 8080)])
    }

    @Test func anEmptyConfigRunsTheDefaults() throws {
        let snapshot = try loader.load(text: "{}")
        #expect(snapshot.config.inbound.app == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(snapshot.inboundChain.names == ["route", "retry", "metrics", "tap"])
        #expect(snapshot.inboundChain.allNames == ["protocol-detect", "route", "retry", "metrics", "tap"], "the product's pipeline runs by default")
        #expect(snapshot.outboundChain.allNames == ["protocol-detect", "route", "retry", "metrics", "tap"])
        #expect(snapshot.config.tap.address == ListenAddress(host: "127.0.0.1", port: 4190))
        #expect(snapshot.config.upstream.connectTimeout == .seconds(1))
        #expect(snapshot.config.shutdownGracePeriod == .seconds(30))
    }

    @Test func anUnknownTopLevelFieldIsRejectedWithItsLine() {
        let failure = error("admin:\n  address: 127.0.0.1:4191\nbackend:\n  - name: x\n")
        #expect(failure?.description == "proxy.yaml:3: backend: unknown field 'backend'; expected one of: admin, backends, controller, downstream, identity, inbound, outbound, shutdownGracePeriod, tap, upstream")
    }

    @Test func aBadAddressNamesTheFieldAndLine() {
        let failure = error("inbound:\n  address: localhost\n")
        #expect(failure?.line == 2)
        #expect(failure?.field == "inbound.address")
        #expect(failure?.message.contains("'localhost' is not host:port") == true)
    }

    @Test func filterErrorsCarryTheFullFieldPathAndLine() {
        let failure = error("""
            outbound:
              filters:
                - name: route
                  config:
                    routes:
                      - name: a
                        backend: nowhere
            """)
        #expect(failure?.field == "outbound.filters[0].config.routes[0].backend")
        #expect(failure?.line == 7)
        #expect(failure?.message == "filter 'route': unknown backend 'nowhere'; defined backends: none")
    }

    @Test func anUnknownFilterIsRejectedWithTheRegisteredNames() {
        let failure = error("inbound:\n  filters:\n    - name: retries\n")
        #expect(failure?.field == "inbound.filters[0]")
        #expect(failure?.line == 3)
        #expect(failure?.message.contains("unknown filter; registered filters are: header-rewrite, metrics, protocol-detect, retry, route, tap") == true)
    }

    @Test func theTapListenerStaysOnLoopbackUnlessRemoteTapIsAllowed() throws {
        let failure = error("tap:\n  address: 0.0.0.0:4190\n")
        #expect(failure?.field == "tap.address")
        #expect(failure?.line == 2)
        #expect(failure?.message.contains("tap.allowRemote: true") == true)
        _ = try loader.load(text: "tap: { address: 0.0.0.0:4190, allowRemote: true }")
    }

    @Test func identityComesFromConfigThenEnvironmentThenDefaults() throws {
        let fromConfig = try loader.load(text: "identity: { namespace: emojivoto, workload: deploy/web, instance: web-1 }").identity
        #expect(fromConfig == ProxyIdentity(namespace: "emojivoto", workload: WorkloadRef(kind: "deployment", name: "web"), instance: "web-1"))
        let fromEnvironment = IdentityConfig().resolve(environment: ["WEFT_NAMESPACE": "shop", "WEFT_WORKLOAD": "sts/db", "WEFT_INSTANCE": "db-0"])
        #expect(fromEnvironment == ProxyIdentity(namespace: "shop", workload: WorkloadRef(kind: "statefulset", name: "db"), instance: "db-0"))
        let defaults = IdentityConfig().resolve(environment: [:])
        #expect(defaults.namespace == "default" && defaults.workload == nil && !defaults.instance.isEmpty)
        #expect(error("identity: { workload: 'deploy/' }")?.field == "identity.workload")
    }

    @Test func backendsMayNameTheWorkloadServingThem() throws {
        let snapshot = try loader.load(text: "backends: [{ name: voting, namespace: emojivoto, workload: deploy/voting, endpoints: [127.0.0.1:8081] }]")
        #expect(snapshot.backends["voting"]?.service == ServiceIdentity(service: "voting", namespace: "emojivoto",
                                                                         workload: WorkloadRef(kind: "deployment", name: "voting")))
        #expect(error("backends: [{ name: voting, workload: '/x' }]")?.field == "backends[0].workload")
    }

    @Test func inboundRoutesMayNameTheLocalApp() throws {
        let snapshot = try loader.load(text: """
            inbound:
              filters:
                - name: route
                  config: { routes: [{ name: all, backend: app }] }
            """)
        #expect(snapshot.inboundChain.names == ["route"])
        #expect(error("backends: [{ name: app, endpoints: [] }]")?.message.contains("reserved") == true)
    }

    @Test func duplicateBackendsAreRejected() {
        let failure = error("backends:\n  - { name: a }\n  - { name: a }\n")
        #expect(failure?.field == "backends[1].name")
        #expect(failure?.line == 3)
    }

    @Test func invalidYAMLIsReportedWithItsLine() {
        let failure = error("inbound:\n  address: [127.0.0.1\n")
        #expect(failure?.message.hasPrefix("not valid YAML") == true)
        #expect(failure?.line != nil)
    }

    @Test func theVersionIsAStableHashOfTheSource() throws {
        let first = try loader.load(text: "admin: { address: 127.0.0.1:1 }")
        let second = try loader.load(text: "admin: { address: 127.0.0.1:1 }")
        let third = try loader.load(text: "admin: { address: 127.0.0.1:2 }")
        #expect(first.version == second.version)
        #expect(first.version != third.version)
        #expect(first.version.count == 16)
    }
}
