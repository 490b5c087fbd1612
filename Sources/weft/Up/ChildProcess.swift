#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A child process in its own process group (so stopping it stops whatever it started too), with
/// stdout and stderr appended to a log file.
final class ChildProcess: @unchecked Sendable {
    let name: String
    let pid: pid_t
    let logPath: String
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `arguments` (looked up in `PATH`) in `directory` with `environment`.
    init(name: String, arguments: [String], environment: [String: String], directory: String?, logPath: String) throws {
        self.name = name
        self.logPath = logPath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        // The parent blocks or traps signals for its own use; children start with defaults.
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)

        // glibc's posix_spawn_file_actions_addchdir_np is not visible from Swift: a shell changes directory, then execs.
        let arguments = directory.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + arguments } ?? arguments
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw ChildProcessError(message: "cannot start \(name) (\(arguments.joined(separator: " "))): \(String(cString: strerror(result)))")
        }
        self.pid = pid
    }

    /// The exit status once it has exited (reaps it), else nil.
    var exited: Int32? {
        lock.withLock {
            if let exitStatus { return exitStatus }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            } else if result < 0 && errno == ECHILD {
                exitStatus = -1
            }
            return exitStatus
        }
    }

    /// Sends `signal` to the child's whole process group.
    func signal(_ signal: Int32) {
        guard exited == nil else { return }
        kill(-pid, signal)
    }

    /// SIGTERM, then SIGKILL after `grace` if it has not exited; waits until it has.
    func stop(grace: Duration) async {
        signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while exited == nil && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if exited == nil {
            kill(-pid, SIGKILL)
            while exited == nil { try? await Task.sleep(for: .milliseconds(20)) }
        }
        // Whatever it started in its group goes too.
        kill(-pid, SIGKILL)
    }
}

struct ChildProcessError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A free TCP port on 127.0.0.1 below the kernel's ephemeral range (`ip_local_port_range`).
///
/// The port is only checked free: its owner (an app, a proxy) binds it later. A port from the
/// ephemeral range could meanwhile become the source port of any outgoing connection on the
/// machine (a proxy dialing the controller, say), and the owner's bind would fail with "address
/// already in use"; below the range only another explicit bind can take it.
func freeLoopbackPort() throws -> Int {
    let ephemeralLow = firstEphemeralPort()
    let candidates = max(1024, ephemeralLow - 16384)..<ephemeralLow
    guard !candidates.isEmpty else { return try bindLoopback(port: 0) }
    for _ in 0..<256 {
        if let port = try? bindLoopback(port: Int.random(in: candidates)) { return port }
    }
    throw ChildProcessError(message: "no free port on 127.0.0.1 in \(candidates.lowerBound)-\(candidates.upperBound - 1)")
}

/// The first of the kernel's ephemeral (automatically chosen) ports, from `ip_local_port_range`;
/// Linux's default when unreadable.
private func firstEphemeralPort() -> Int {
    let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
    return text?.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32768
}

/// Binds 127.0.0.1:`port` (0: the kernel picks), releases it and returns the port bound.
private func bindLoopback(port: Int) throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ChildProcessError(message: "socket(): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0 else { throw ChildProcessError(message: "bind(): \(String(cString: strerror(errno)))") }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func isListening(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}
