import Foundation

/// What stat needs from the proxies' metrics over a window: how much each counter series grew,
/// and each gauge's latest value. Computed the same way from the controller's own scrapes and
/// from Prometheus, so both give the same numbers.
public struct MetricsWindow: Sendable {
    /// Counter and histogram-bucket series, valued by their increase over the window.
    public var increases: [Sample]
    /// Gauge series, valued now.
    public var gauges: [Sample]
    /// The window's length in seconds (rates divide by it).
    public var seconds: Double

    public init(increases: [Sample], gauges: [Sample], seconds: Double) {
        self.increases = increases
        self.gauges = gauges
        self.seconds = seconds
    }

    static let gaugeNames: Set<String> = ["tcp_open_connections"]

    /// The part of a `window`-long window ending `now` that the proxies were up for: rates divide
    /// by it, so a mesh started 20 s ago shows its real request rate, not a third of it.
    static func covered(window: Double, now: Date, samples: [Sample]) -> Double {
        let starts = samples.filter { $0.name == "process_start_time_seconds" }.map(\.value)
        guard let earliest = starts.min() else { return window }
        return max(1, min(window, now.timeIntervalSince1970 - earliest))
    }

    /// Increases from two readings of the same series: a series absent at the start counts from
    /// zero (counters are created at their first increment); a counter that went down was reset
    /// (the proxy restarted) and counts from zero too.
    static func from(start: [Sample], end: [Sample], seconds: Double, key: (Sample) -> [String: String] = { $0.labels }) -> MetricsWindow {
        var before: [SeriesKey: Double] = [:]
        for sample in start where !gaugeNames.contains(sample.name) {
            before[SeriesKey(name: sample.name, labels: key(sample))] = sample.value
        }
        var increases: [Sample] = []
        var gauges: [Sample] = []
        for sample in end {
            if gaugeNames.contains(sample.name) {
                gauges.append(sample)
                continue
            }
            guard sample.name != "process_start_time_seconds" else { continue }
            let old = before[SeriesKey(name: sample.name, labels: key(sample))] ?? 0
            let increase = sample.value >= old ? sample.value - old : sample.value
            increases.append(Sample(name: sample.name, labels: sample.labels, value: increase))
        }
        return MetricsWindow(increases: increases, gauges: gauges, seconds: seconds)
    }

    struct SeriesKey: Hashable {
        var name: String
        var labels: [String: String]
    }
}

/// Where stat reads metrics from: the controller's own scrapes, or a Prometheus.
public protocol MetricsSource: Sendable {
    /// A short description for errors (`embedded scrapes`, `Prometheus at http://…`).
    var name: String { get }
    func window(_ seconds: Double) async throws -> MetricsWindow
}
