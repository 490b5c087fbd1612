import WeftFilter
import WeftTelemetry

/// Builds the `metrics` filter over the proxy's long-lived ``MeshMetrics`` (series survive reloads).
public struct MetricsFilterFactory: FilterFactory {
    public let name = "metrics"
    public let metrics: MeshMetrics

    public init(metrics: MeshMetrics) {
        self.metrics = metrics
    }

    public func makeFilter(config: MetricsFilterConfig, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter {
        MetricsFilter(metrics: metrics, direction: context.direction, identity: context.identity)
    }
}
