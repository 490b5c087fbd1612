import Foundation

/// The standard Prometheus process metrics, read from `/proc/self` at scrape time.
enum ProcessMetrics {
    static func read(startTime: Date) -> String {
        var text = ""
        func metric(_ name: String, _ type: String, _ help: String, _ value: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            // Fields after the command name; utime and stime are fields 14 and 15 (1-based), rss 24.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 22, let utime = Double(fields[11]), let stime = Double(fields[12]),
               let vsize = Int(fields[20]), let rss = Int(fields[21]) {
                metric("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.",
                       format((utime + stime) / ticks))
                metric("process_virtual_memory_bytes", "gauge", "Virtual memory size, in bytes.", String(vsize))
                metric("process_resident_memory_bytes", "gauge", "Resident memory size, in bytes.", String(rss * pageSize))
            }
        }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            metric("process_open_fds", "gauge", "Open file descriptors.", String(fds.count))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            metric("process_max_fds", "gauge", "The limit on open file descriptors.", String(limit.rlim_cur))
        }
        metric("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.",
               format(startTime.timeIntervalSince1970))
        metric("process_uptime_seconds", "gauge", "Seconds since the proxy started.", format(Date().timeIntervalSince(startTime)))
        return text
    }

    private static func format(_ value: Double) -> String {
        String(format: "%.3f", value)
    }
}
