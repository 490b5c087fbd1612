import Testing
@testable import WeftController
import WeftFilter
import WeftProxy
import WeftProxyMain

@Suite struct SnapshotRendererTests {
    let renderer = SnapshotRenderer(registry: CompiledFilters.registry())

    func state(_ text: String) throws -> MeshState {
        try MeshFile.parse(text, path: "mesh.yaml").state()
    }

    @Test func everyServiceIsABackendByItsQualifiedNameAndInItsNamespaceByItsShortName() throws {
        let mesh = try state("""
            workloads:
              - { name: web, namespace: a, endpoints: [127.0.0.1:1] }
              - { name: db, namespace: b, endpoints: [127.0.0.1:2] }
            """)
        let snapshot = renderer.render(mesh, namespace: "a", workload: WorkloadRef(kind: "deploy", name: "web"))
        // The proxy loads it like its own file would be loaded.
        let loaded = try ConfigLoader(registry: CompiledFilters.registry())
            .load(text: "{}", pushed: PushedConfig(version: snapshot.version, config: snapshot.config))
        #expect(Set(loaded.backends.keys) == ["web", "web.a", "db.b", "app"])
        #expect(loaded.backends["db.b"]?.service.service == "db")
        #expect(loaded.backends["db.b"]?.service.workload?.description == "deployment/db")
        #expect(loaded.version == snapshot.version)
    }

    @Test func theSameContentHasTheSameVersionAndAChangeChangesIt() throws {
        let one = try state("workloads:\n  - { name: web, endpoints: [127.0.0.1:1] }\n")
        let same = try state("workloads:\n  - name: web\n    endpoints: [127.0.0.1:1]\n")
        let moved = try state("workloads:\n  - { name: web, endpoints: [127.0.0.1:2] }\n")
        let version = { (mesh: MeshState) in renderer.render(mesh, namespace: "default", workload: nil).version }
        #expect(version(one) == version(same))
        #expect(version(one) != version(moved))
    }

    @Test func aBadFilterConfigIsRejectedWithTheMeshFilesLine() throws {
        let mesh = try state("""
            workloads:
              - name: web
                outbound:
                  filters:
                    - name: route
                      config:
                        routes:
                          - { name: r, backend: nowhere }
            """)
        #expect {
            _ = try renderer.validate(mesh)
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("mesh.yaml:8: workloads[0].outbound.filters[0].config.routes[0].backend") && text.contains("nowhere")
        }
    }

    @Test func aFilterTheControllerLacksIsAWarningNotAnError() throws {
        let mesh = try state("""
            workloads:
              - name: web
                inbound:
                  filters:
                    - name: rate-limit
                    - name: route
            """)
        let warnings = try renderer.validate(mesh)
        #expect(warnings.count == 1)
        #expect(warnings[0].contains("mesh.yaml:5: workloads[0].inbound.filters: filter 'rate-limit' is not compiled into the controller"))
        // The proxies still get it: they decide.
        #expect(renderer.render(mesh, namespace: "default", workload: WorkloadRef(kind: "deploy", name: "web")).config.contains("rate-limit"))
    }
}
