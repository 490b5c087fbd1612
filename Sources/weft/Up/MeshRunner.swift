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
    /// The running app of each instance, by instance key.
    private let apps = NIOLockedValueBox<[String: ChildProcess]>([:])
    /// The command each workload's apps run now (`namespace/kind/name`).
    private let commands = NIOLockedValueBox<[String: [String]]>([:])
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
            try startApp(instance, command: instance.command)
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
            try checkNoneExited(Array(apps.withLockedValue { $0.values }), what: "app")
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

    private func startApp(_ instance: MeshPlan.Instance, command: [String]) throws {
        let app = try ChildProcess(
            name: "app \(instance.key)", arguments: command, environment: plan.appEnvironment(instance),
            directory: meshDirectory, logPath: "\(plan.runDirectory)/logs/\(instance.key).log")
        apps.withLockedValue { $0[instance.key] = app }
        commands.withLockedValue { $0[Self.workloadKey(instance.workload)] = command }
    }

    private static func workloadKey(_ workload: MeshFile.Workload) -> String {
        "\(workload.namespace)/\(workload.ref)"
    }

    /// Until shutdown: reports any process that exits on its own (the rest keeps running), and
    /// restarts a workload's apps when its `command` changes in the mesh file.
    private func supervise() async {
        var reported: Set<Int32> = []
        var lastText = try? String(contentsOfFile: plan.mesh.path, encoding: .utf8)
        var tick = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            for child in Array(apps.withLockedValue({ $0.values })) + proxies.withLockedValue({ $0 }) {
                if let status = child.exited, reported.insert(child.pid).inserted {
                    say("\(child.name) exited with status \(status); log: \(child.logPath)")
                }
            }
            tick += 1
            if tick % 2 == 0, let text = try? String(contentsOfFile: plan.mesh.path, encoding: .utf8), text != lastText {
                lastText = text
                await applyCommandChanges(text)
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Restarts the apps of each workload whose command changed (same ports, same proxies).
    private func applyCommandChanges(_ text: String) async {
        guard let file = try? MeshFile.parse(text, path: plan.mesh.path) else { return }  // the controller reports the error
        let current = commands.withLockedValue { $0 }
        for workload in file.workloads {
            let key = Self.workloadKey(workload)
            guard let running = current[key] else {
                if workload.command != nil { say("\(key) is new in the mesh file: restart weft up to run it") }
                continue
            }
            guard let command = workload.command, command != running else { continue }
            let instances = plan.instances.filter { Self.workloadKey($0.workload) == key }
            if workload.replicas != instances.count { say("\(key): replicas changed; restart weft up to apply that") }
            for instance in instances {
                let old = apps.withLockedValue { $0[instance.key] }
                await old?.stop(grace: .seconds(5))
                do {
                    try startApp(instance, command: command)
                    say("restarted \(instance.key): \(command.joined(separator: " "))")
                } catch {
                    say("cannot restart \(instance.key): \(error)")
                }
            }
        }
    }

    private func say(_ line: String) {
        StandardOutput.write("weft up: \(line)\n")
    }

    /// Stops the apps, then the proxies (SIGTERM, SIGKILL after 5 s), each with its process group.
    func stopAll() async {
        for group in [Array(apps.withLockedValue { $0.values }), proxies.withLockedValue { $0 }] {
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
        StandardOutput.write(text)
    }
}
