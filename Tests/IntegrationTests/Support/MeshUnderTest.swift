import Foundation

/// `weft up` running a mesh file in a temp folder, on free ports, with helpers to drive the CLI
/// against its controller. Stopped (SIGTERM) at the end of the test.
final class MeshUnderTest {
    let process: ChildProcess
    let directory: URL
    let api: String
    /// Each instance's addresses, from the status table `weft up` prints.
    private(set) var inbound: [String: String] = [:]

    private init(process: ChildProcess, directory: URL, api: String) {
        self.process = process
        self.directory = directory
        self.api = api
    }

    /// The example apps' script (config/example-apps/service.py), for mesh files written by tests.
    static let serviceScript = Paths.packageRoot.appendingPathComponent("config/example-apps/service.py").path

    /// Writes `mesh` to `mesh.yaml` in a new temp folder and runs `weft up` on it; returns once it printed its table.
    static func start(mesh: String, extraArguments: [String] = []) async throws -> MeshUnderTest {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-up-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("mesh.yaml")
        try mesh.write(to: file, atomically: true, encoding: .utf8)
        // A port picked free can be taken by a parallel test before `weft up` binds it: pick again.
        var attempt = 1
        while true {
            let ports = distinctFreePorts(2)
            let api = "127.0.0.1:\(ports[1])"
            let process = ChildProcess(Paths.weftBinary, [
                "up", "-f", file.path, "--push-address", "127.0.0.1:\(ports[0])", "--api-address", api,
                "--run-dir", directory.appendingPathComponent("run").path, "--log-level", "info",
            ] + extraArguments, stopsGracefully: true)
            try process.start()
            do {
                _ = try await process.waitForOutput("Ctrl-C stops the mesh", timeout: .seconds(90))
            } catch where attempt < 3 && !process.isRunning && process.output.contains("address already in use") {
                attempt += 1
                continue
            }
            return attached(process, directory: directory, api: api)
        }
    }

    private static func attached(_ process: ChildProcess, directory: URL, api: String) -> MeshUnderTest {
        let mesh = MeshUnderTest(process: process, directory: directory, api: "http://\(api)")
        for match in process.output.matches(of: /\n\S+\s+\S+\s+(\S+)\s+127\.0\.0\.1:\d+\s+(127\.0\.0\.1:\d+)\s/) {
            mesh.inbound[String(match.1)] = String(match.2)
        }
        return mesh
    }

    var meshFile: URL { directory.appendingPathComponent("mesh.yaml") }

    /// Runs `weft ARGUMENTS --controller API`.
    func weft(_ arguments: [String]) async throws -> CommandResult {
        try await run(Paths.weftBinary, arguments + ["--controller", api], timeout: .seconds(60))
    }

    /// `weft stat … -o json`, as rows keyed by name.
    func stat(_ arguments: [String]) async throws -> [String: [String: Any]] {
        let result = try await weft(["stat"] + arguments + ["-o", "json"])
        guard result.status == 0, let rows = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] else {
            throw TestFailure("weft stat \(arguments) failed (\(result.status)): \(result.stdout) \(result.stderr)")
        }
        var byName: [String: [String: Any]] = [:]
        for row in rows { byName[row["name"] as? String ?? "?"] = row }
        return byName
    }

    /// Polls stat until `done` holds (the controller scrapes every second), or fails with the last rows.
    func stat(_ arguments: [String], until done: ([String: [String: Any]]) -> Bool, timeout: Duration = .seconds(20)) async throws -> [String: [String: Any]] {
        let deadline = ContinuousClock.now + timeout
        var last: [String: [String: Any]] = [:]
        while ContinuousClock.now < deadline {
            last = (try? await stat(arguments)) ?? last
            if done(last) { return last }
            try await Task.sleep(for: .milliseconds(300))
        }
        throw TestFailure("weft stat \(arguments) never got there; last rows: \(last)")
    }

    /// `weft check -o json`'s proxies.
    func proxies() async throws -> [[String: Any]] {
        let result = try await weft(["check", "-o", "json"])
        guard let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
              let proxies = json["proxies"] as? [[String: Any]] else {
            throw TestFailure("weft check -o json: \(result.stdout) \(result.stderr)")
        }
        return proxies
    }

    /// Every process in `weft up`'s tree (its own pid excluded).
    func descendants() -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { children[parent, default: []].append(pid) }
        }
        var result: [Int32] = []
        var queue = [process.pid]
        while let next = queue.popLast() {
            for child in children[next] ?? [] {
                result.append(child)
                queue.append(child)
            }
        }
        return result
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}

/// Whether `pid` is still a live process (not a zombie).
func isAlive(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
    return !stat[stat.index(after: close)...].hasPrefix(" Z")
}

/// `count` free ports, all different (the kernel may hand the same one out twice in a row).
func distinctFreePorts(_ count: Int) -> [Int] {
    var ports: [Int] = []
    while ports.count < count {
        let port = freePort()
        if !ports.contains(port) { ports.append(port) }
    }
    return ports
}
