import Foundation
import NIOConcurrencyHelpers
import ServiceLifecycle
import WeftController
import WeftProxy

/// Starts and watches `weft up`'s processes: every proxy first (and waits until each has its
/// config from the controller), then every app (and waits until each listens), then prints where
/// things are. On shutdown it stops the apps, then the proxies, and leaves nothing behind.
final class MeshRunner: Service, Sendable {
    let plan: MeshPlan
    let server: ControllerServer
    let apiAddress: ListenAddress
    let meshDirectory: String
    private let apps = NIOLockedValueBox<[ChildProcess]>([])
    private let proxies = NIOLockedValueBox<[ChildProcess]>([])

    init(plan: MeshPlan, server: ControllerServer, apiAddress: ListenAddress, meshDirectory: String) {
        self.plan = plan
        self.server = server
        self.apiAddress = apiAddress
        self.meshDirectory = meshDirectory
    }

    func run() async throws {
        for await _ in server.listening { break }
        if Task.isShuttingDownGracefully || Task.isCancelled { return }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        for instance in plan.instances {
            let proxy = try ChildProcess(
                name: "proxy of \(instance.key)", arguments: [executable, "proxy", "--config", instance.configPath, "--threads", "1", "--no-watch"],
                environment: ProcessInfo.processInfo.environment, directory: nil,
                logPath: "\(plan.runDirectory)/logs/\(instance.key).proxy.log")
            proxies.withLockedValue { $0.append(proxy) }
        }
        try await waitForConfig()
        for instance in plan.instances {
            let app = try ChildProcess(
                name: "app \(instance.key)", arguments: instance.command, environment: plan.appEnvironment(instance),
                directory: meshDirectory, logPath: "\(plan.runDirectory)/logs/\(instance.key).log")
            apps.withLockedValue { $0.append(app) }
        }
        try await waitForApps()
        printStatus()
        await supervise()
        await stopAll()
    }

    /// Every proxy connected and on the controller's latest config.
    private func waitForConfig() async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !Task.isShuttingDownGracefully {
            try checkNoneExited(proxies.withLockedValue { $0 }, what: "proxy")
            let known = server.controller.proxies
            let pending = plan.instances.filter { instance in
                !known.contains { $0.connected && $0.namespace == instance.workload.namespace && $0.instance == instance.name
                    && $0.latestVersion != nil && $0.ackedVersion == $0.latestVersion }
            }
            if pending.isEmpty { return }
            if ContinuousClock.now > deadline {
                let names = pending.map(\.key).joined(separator: ", ")
                let nacks = known.compactMap { proxy in proxy.nack.map { "\(proxy.instance): \($0.error)" } }.joined(separator: "; ")
                throw ChildProcessError(message: "proxies without their config after 60 s: \(names)\(nacks.isEmpty ? "" : " (NACK: \(nacks))"); see \(plan.runDirectory)/logs")
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Every app listening on its port.
    private func waitForApps() async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        var pending = plan.instances
        while !Task.isShuttingDownGracefully {
            try checkNoneExited(apps.withLockedValue { $0 }, what: "app")
            pending = pending.filter { !isListening(port: $0.appPort) }
            if pending.isEmpty { return }
            if ContinuousClock.now > deadline {
                throw ChildProcessError(message: "apps not listening on $PORT after 60 s: \(pending.map { "\($0.key) (port \($0.appPort))" }.joined(separator: ", ")); see \(plan.runDirectory)/logs")
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func checkNoneExited(_ children: [ChildProcess], what: String) throws {
        for child in children {
            if let status = child.exited {
                let tail = (try? String(contentsOfFile: child.logPath, encoding: .utf8))?.split(separator: "\n").suffix(3).joined(separator: " | ") ?? ""
                throw ChildProcessError(message: "\(child.name) exited with status \(status) while starting: \(tail) (log: \(child.logPath))")
            }
        }
    }

    /// Until shutdown: reports any process that exits on its own (the rest keeps running).
    private func supervise() async {
        var reported: Set<Int32> = []
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            for child in apps.withLockedValue({ $0 }) + proxies.withLockedValue({ $0 }) {
                if let status = child.exited, reported.insert(child.pid).inserted {
                    FileHandle.standardOutput.write(Data("weft up: \(child.name) exited with status \(status); log: \(child.logPath)\n".utf8))
                }
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Stops the apps, then the proxies (SIGTERM, SIGKILL after 5 s), each with its process group.
    func stopAll() async {
        for group in [apps.withLockedValue { $0 }, proxies.withLockedValue { $0 }] {
            await withTaskGroup(of: Void.self) { tasks in
                for child in group { tasks.addTask { await child.stop(grace: .seconds(5)) } }
            }
        }
    }

    private func printStatus() {
        let known = server.controller.proxies
        let rows = plan.instances.map { instance -> [String] in
            let version = known.first { $0.namespace == instance.workload.namespace && $0.instance == instance.name }?.ackedVersion ?? "-"
            return [instance.workload.namespace, instance.workload.ref.description, instance.name, "127.0.0.1:\(instance.appPort)",
                    "127.0.0.1:\(instance.inbound)", "127.0.0.1:\(instance.outbound)", "127.0.0.1:\(instance.admin)", version]
        }
        let controllerFlag = apiAddress == ListenAddress(host: "127.0.0.1", port: 4201) ? "" : " --controller http://\(apiAddress)"
        let namespace = plan.instances.first?.workload.namespace ?? "default"
        let first = plan.instances.first.map { "\($0.workload.ref)" } ?? "deploy/NAME"
        let text = """
            weft up: the mesh in \(plan.mesh.path) is running; controller API http://\(apiAddress); logs in \(plan.runDirectory)/logs

            \(Table.render(["NAMESPACE", "WORKLOAD", "INSTANCE", "APP", "INBOUND", "OUTBOUND", "ADMIN", "CONFIG"], rows))

            Try:
              weft stat deploy -n \(namespace)\(controllerFlag)
              weft edges deploy\(controllerFlag)
              weft tap \(first) -n \(namespace)\(controllerFlag)
              weft check\(controllerFlag)
            Ctrl-C stops the mesh.

            """
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
