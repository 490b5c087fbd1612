import Foundation
import WeftController
import WeftFilter
import WeftProxy

/// Which processes `weft up` runs and on which ports: one app and one proxy per replica.
struct MeshPlan: Sendable {
    struct Instance: Sendable {
        var workload: MeshFile.Workload
        var name: String
        var command: [String]
        var appPort: Int
        var inbound: Int
        var outbound: Int
        var admin: Int
        var tap: Int
        var configPath: String

        var key: String { "\(workload.namespace).\(name)" }
    }

    let mesh: MeshFile
    let runDirectory: String
    let controller: ListenAddress
    let instances: [Instance]

    /// `reserving`: ports not to hand out besides the controller's (its API's): the plan is made
    /// before the controller binds them.
    init(mesh: MeshFile, runDirectory: String, controller: ListenAddress, reserving reserved: [Int] = []) throws {
        self.mesh = mesh
        self.runDirectory = runDirectory
        self.controller = controller
        var instances: [Instance] = []
        // Distinct ports: each is only checked free, and a random pick can repeat.
        var taken = Set([controller.port] + reserved)
        func port() throws -> Int {
            for _ in 0..<100 {
                let candidate = try freeLoopbackPort()
                if taken.insert(candidate).inserted { return candidate }
            }
            throw ChildProcessError(message: "no free ports on 127.0.0.1")
        }
        for workload in mesh.workloads {
            guard let command = workload.command else { continue }
            for index in 0..<workload.replicas {
                let name = "\(workload.name)-\(index)"
                let appPort: Int
                if workload.replicas == 1, let fixed = workload.port { appPort = fixed } else { appPort = try port() }
                instances.append(Instance(
                    workload: workload, name: name, command: command, appPort: appPort,
                    inbound: try port(), outbound: try port(), admin: try port(), tap: try port(),
                    configPath: "\(runDirectory)/proxies/\(workload.namespace).\(name).yaml"))
            }
        }
        self.instances = instances
    }

    /// Each workload's endpoints: its proxies' inbound addresses (by the file's current workload order).
    func endpoints(for file: MeshFile) -> [Int: [ListenAddress]] {
        var result: [Int: [ListenAddress]] = [:]
        for (index, workload) in file.workloads.enumerated() {
            let mine = instances.filter { $0.workload.namespace == workload.namespace && $0.workload.ref == workload.ref }
            if !mine.isEmpty { result[index] = mine.map { ListenAddress(host: "127.0.0.1", port: $0.inbound) } }
        }
        return result
    }

    /// Writes each proxy's bootstrap file: its identity, listeners and the controller.
    func writeProxyConfigs() throws {
        try FileManager.default.createDirectory(atPath: "\(runDirectory)/proxies", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(runDirectory)/logs", withIntermediateDirectories: true)
        for instance in instances {
            let text = """
                # Written by `weft up`: this proxy's bootstrap. Filters and endpoints come from the controller.
                identity:
                  namespace: \(instance.workload.namespace)
                  workload: \(instance.workload.ref)
                  instance: \(instance.name)
                controller:
                  address: \(controller)
                admin:
                  address: 127.0.0.1:\(instance.admin)
                tap:
                  address: 127.0.0.1:\(instance.tap)
                inbound:
                  address: 127.0.0.1:\(instance.inbound)
                  app: 127.0.0.1:\(instance.appPort)
                outbound:
                  address: 127.0.0.1:\(instance.outbound)
                shutdownGracePeriod: 5s

                """
            try text.write(toFile: instance.configPath, atomically: true, encoding: .utf8)
        }
    }

    func appEnvironment(_ instance: Instance) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        let outbound = "127.0.0.1:\(instance.outbound)"
        environment["PORT"] = String(instance.appPort)
        environment["WEFT_OUTBOUND"] = outbound
        environment["HTTP_PROXY"] = "http://\(outbound)"
        environment["http_proxy"] = "http://\(outbound)"
        environment["NO_PROXY"] = nil
        environment["no_proxy"] = nil
        environment["WEFT_NAMESPACE"] = instance.workload.namespace
        environment["WEFT_WORKLOAD"] = instance.workload.ref.description
        environment["WEFT_INSTANCE"] = instance.name
        environment["WEFT_SERVICE"] = instance.workload.service
        environment["PYTHONUNBUFFERED"] = "1"
        // Binaries built next to weft (like the emojivoto demo) run by name.
        let ownFolder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
        environment["PATH"] = ownFolder + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        return environment
    }
}
