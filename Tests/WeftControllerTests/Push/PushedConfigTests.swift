import Testing
import WeftProxy
import WeftProxyMain

/// How a proxy lays the controller's snapshot over its bootstrap file.
@Suite struct PushedConfigTests {
    let loader = ConfigLoader(registry: CompiledFilters.registry())
    let bootstrap = """
        identity: { namespace: a, workload: deploy/web }
        inbound:
          address: 127.0.0.1:5000
          app: 127.0.0.1:5001
          filters: [{ name: route }]
        backends: [{ name: old, endpoints: [127.0.0.1:9] }]
        """

    @Test func theSnapshotReplacesFiltersAndBackendsAndKeepsListenersAndIdentity() throws {
        let snapshot = try loader.load(text: bootstrap, file: "proxy.yaml", pushed: PushedConfig(version: "v2", config: """
            inbound: { filters: [{ name: route }, { name: metrics }] }
            backends: [{ name: new, endpoints: [127.0.0.1:7] }]
            """))
        #expect(snapshot.version == "v2")
        #expect(snapshot.config.inbound.address.port == 5000)
        #expect(snapshot.config.inbound.app.port == 5001)
        #expect(snapshot.identity.workload?.name == "web")
        #expect(snapshot.inboundChain.allNames == ["route", "metrics"])
        #expect(Set(snapshot.backends.keys) == ["new", "app"])
    }

    @Test(arguments: [
        ("admin: { address: 0.0.0.0:1 }", "controller snapshot v3:1: admin: the controller may set only backends, inbound, outbound, upstream"),
        ("inbound: { app: 127.0.0.1:1 }", "controller snapshot v3:1: inbound.app: the controller may set only inbound.filters"),
        ("outbound: { filters: [{ name: nope }] }", "controller snapshot v3:1: outbound.filters[0]: filter 'nope': unknown filter"),
        ("backends: [{ name: x, endpoints: [bad] }]", "controller snapshot v3"),
    ])
    func aSnapshotThatCannotBeUsedIsAnErrorNamingTheSnapshot(pushed: String, expected: String) {
        #expect {
            _ = try loader.load(text: bootstrap, file: "proxy.yaml", pushed: PushedConfig(version: "v3", config: pushed))
        } throws: { error in
            "\(error)".hasPrefix(expected)
        }
    }
}
