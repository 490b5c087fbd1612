import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The embedded metrics path: the controller scrapes every connected proxy's `/metrics` and keeps
/// a short history in memory (only the series stat uses), so stat needs no Prometheus.
public final class ScrapeStore: MetricsSource, Sendable {
    /// How far back history goes; longer windows are cut to this.
    public let retention: Double
    private let history = NIOLockedValueBox([String: ProxyHistory]())

    struct ProxyHistory {
        var scrapes: [(time: Date, samples: [Sample])] = []
        var startTime: Date?
    }

    public init(retention: Double = 300) {
        self.retention = retention
    }

    public var name: String { "the controller's scrapes" }

    /// Adds one scrape of the proxy known as `proxy`.
    public func record(proxy: String, at time: Date, samples: [Sample]) {
        let start = samples.first { $0.name == "process_start_time_seconds" }.map { Date(timeIntervalSince1970: $0.value) }
        history.withLockedValue { history in
            var entry = history[proxy] ?? ProxyHistory()
            entry.scrapes.append((time, samples))
            if let start { entry.startTime = start }
            let horizon = time.addingTimeInterval(-retention - 60)
            // Keep one scrape older than the retention, as the baseline of the longest window.
            while entry.scrapes.count > 2, entry.scrapes[1].time < horizon { entry.scrapes.removeFirst() }
            history[proxy] = entry
        }
    }

    /// Forgets proxies not scraped since before the retention (gone for good); once per scrape round.
    func prune(now: Date = Date()) {
        let horizon = now.addingTimeInterval(-retention - 60)
        history.withLockedValue { history in
            history = history.filter { $0.value.scrapes.last.map { $0.time > horizon } ?? false }
        }
    }

    public func window(_ seconds: Double) async throws -> MetricsWindow {
        let length = min(seconds, retention)
        let proxies = history.withLockedValue { Array($0.values) }
        var increases: [Sample] = []
        var gauges: [Sample] = []
        var latestSamples: [Sample] = []
        let now = Date()
        for proxy in proxies {
            guard let latest = proxy.scrapes.last, latest.time > now.addingTimeInterval(-length) else { continue }
            let cutoff = latest.time.addingTimeInterval(-length)
            let baseline: [Sample]
            if let older = proxy.scrapes.last(where: { $0.time <= cutoff }) {
                baseline = older.samples
            } else if let start = proxy.startTime, start >= cutoff {
                baseline = []  // started inside the window: its counters began at zero
            } else {
                baseline = proxy.scrapes.first?.samples ?? []
            }
            let window = MetricsWindow.from(start: baseline, end: latest.samples, seconds: length)
            increases += window.increases
            gauges += window.gauges
            latestSamples += latest.samples.filter { $0.name == "process_start_time_seconds" }
        }
        return MetricsWindow(increases: increases, gauges: gauges, seconds: MetricsWindow.covered(window: length, now: now, samples: latestSamples))
    }
}

/// Scrapes every connected proxy's `/metrics` into a ``ScrapeStore`` every `interval`.
struct Scraper: Sendable {
    let controller: MeshController
    let store: ScrapeStore
    let client: HTTPClient
    let interval: Duration
    let logger: Logger

    func run() async {
        while !Task.isCancelled {
            let targets = controller.proxies.filter { $0.connected && !$0.adminAddress.isEmpty }
            await withTaskGroup(of: Void.self) { group in
                for proxy in targets {
                    group.addTask { await scrape(proxy) }
                }
            }
            store.prune()
            try? await Task.sleep(for: interval)
        }
    }

    private func scrape(_ proxy: ProxyStatus) async {
        do {
            let request = HTTPClientRequest(url: "http://\(proxy.adminAddress)/metrics")
            let response = try await client.execute(request, timeout: .seconds(2))
            guard response.status == .ok else {
                logger.debug("scrape failed", metadata: ["proxy": "\(proxy.adminAddress)", "status": "\(response.status.code)"])
                return
            }
            let body = try await response.body.collect(upTo: 16 << 20)
            let samples = Exposition.parse(String(buffer: body))
            store.record(proxy: "\(proxy.namespace)/\(proxy.workload)/\(proxy.instance)", at: Date(), samples: samples)
        } catch {
            logger.debug("scrape failed", metadata: ["proxy": "\(proxy.adminAddress)", "error": "\(error)"])
        }
    }
}
