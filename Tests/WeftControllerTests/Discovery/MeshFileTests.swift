import Testing
@testable import WeftController
import WeftProxy

@Suite struct MeshFileTests {
    @Test func aWorkloadDefaultsToDeploymentInDefaultServingItsOwnName() throws {
        let file = try MeshFile.parse("workloads:\n  - name: web\n    endpoints: [127.0.0.1:4143]\n", path: "mesh.yaml")
        let web = try #require(file.workloads.first)
        #expect(web.namespace == "default")
        #expect(web.ref.description == "deployment/web")
        #expect(web.service == "web")
        #expect(web.replicas == 1)
        #expect(web.command == nil)
        #expect(file.state().workloads.first?.endpoints == [ListenAddress(host: "127.0.0.1", port: 4143)])
    }

    @Test func aCommandLineRunsThroughTheShellAndAListRunsAsIs() throws {
        let file = try MeshFile.parse("""
            workloads:
              - { name: a, command: python3 app.py --port 1 }
              - { name: b, command: [python3, app.py] }
            """, path: "mesh.yaml")
        #expect(file.workloads[0].command == ["/bin/sh", "-c", "python3 app.py --port 1"])
        #expect(file.workloads[1].command == ["python3", "app.py"])
    }

    @Test(arguments: [
        ("workloads:\n  - name: web\n    replica: 2\n", "mesh.yaml:3: workloads[0].replica: unknown field 'replica'"),
        ("workloads:\n  - name: web\n    replicas: 0\n", "mesh.yaml:3: workloads[0].replicas: must be at least 1"),
        ("workloads:\n  - name: Web\n", "mesh.yaml:2: workloads[0].name: 'Web' is not a name"),
        ("workloads:\n  - name: a\n    service: s\n  - name: b\n    service: s\n", "mesh.yaml:5: workloads[1].service: service s in namespace default is already served by workload a"),
        ("workloads:\n  - name: a\n  - name: a\n", "mesh.yaml:3: workloads[1].name: workload deployment/a in namespace default is defined twice"),
        ("workloads:\n  - name: a\n    endpoints: [nowhere]\n", "mesh.yaml:3: workloads[0].endpoints[0]: 'nowhere' is not host:port"),
        ("workloads:\n  - name: a\n    outbound: { filter: [] }\n", "mesh.yaml:3: workloads[0].outbound.filter: unknown field 'filter'"),
    ])
    func aBadFileNamesFileLineAndField(text: String, expected: String) {
        #expect {
            _ = try MeshFile.parse(text, path: "mesh.yaml")
        } throws: { error in
            "\(error)".hasPrefix(expected)
        }
    }

    @Test func weftUpsEndpointsReplaceTheFilesAndSetTheReplicaCount() throws {
        let file = try MeshFile.parse("workloads:\n  - { name: web, replicas: 2, command: x }\n", path: "mesh.yaml")
        let state = file.state(endpoints: [0: [ListenAddress(host: "127.0.0.1", port: 1), ListenAddress(host: "127.0.0.1", port: 2)]])
        #expect(state.workloads[0].endpoints.count == 2)
        #expect(state.workloads[0].replicas == 2)
    }
}
