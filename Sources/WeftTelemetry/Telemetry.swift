/// The proxy-wide observability state that outlives config reloads: metric series and open taps.
/// One per proxy process; the metrics and tap filters of every chain version share it.
public final class Telemetry: Sendable {
    public let metrics: MeshMetrics
    public let tap: TapHub

    public init(metrics: MeshMetrics = MeshMetrics(), tap: TapHub = TapHub()) {
        self.metrics = metrics
        self.tap = tap
    }
}
