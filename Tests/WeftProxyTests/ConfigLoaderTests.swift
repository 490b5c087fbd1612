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
        #expect(snapshot.inboundChain.allNames == ["protocol-detect", "route", "header-rewrite"])
        #expect(snapshot.outboundChain.names == ["route", "header-rewrite"])
        #expect(snapshot.config.inbound.address == ListenAddress(host: "127.0.0.1", port: 4143))
        #expect(snapshot.config.outbound.address.port == 4140)
        #expect(snapshot.config.admin.address.port == 4191)
        #expect(snapshot.backends["users"]?.endpoints == [ListenAddress(host: "127.0.0.1", port: 8080)])
    }

    @Test func anEmptyConfigRunsTheDefaults() throws {
        let snapshot = try loader.load(text: "{}")
        #expect(snapshot.config.inbound.app == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(snapshot.inboundChain.names == ["route"])
        #expect(snapshot.inboundChain.allNames == ["protocol-detect", "route"], "protocol-detect runs by default")
        #expect(snapshot.config.upstream.connectTimeout == .seconds(1))
        #expect(snapshot.config.shutdownGracePeriod == .seconds(30))
    }

    @Test func anUnknownTopLevelFieldIsRejectedWithItsLine() {
        let failure = error("admin:\n  address: 127.0.0.1:4191\nbackend:\n  - name: x\n")
        #expect(failure?.description == "proxy.yaml:3: backend: unknown field 'backend'; expected one of: admin, backends, inbound, outbound, shutdownGracePeriod, upstream")
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
        let failure = error("inbound:\n  filters:\n    - name: retry\n")
        #expect(failure?.field == "inbound.filters[0]")
        #expect(failure?.line == 3)
        #expect(failure?.message.contains("unknown filter; registered filters are: header-rewrite, protocol-detect, route") == true)
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
