import WeftFilter
import WeftTelemetry

extension FilterRegistry {
    /// A registry holding Weft's built-in filters: `protocol-detect`, `route`, `retry`, `metrics`, `tap`.
    /// The metrics and tap filters of every config version share `telemetry`.
    public static func builtin(telemetry: Telemetry = Telemetry()) -> FilterRegistry {
        var registry = FilterRegistry()
        registry.register(connection: ProtocolDetectFactory())
        registry.register(RouteFilterFactory())
        registry.register(RetryFilterFactory(metrics: telemetry.metrics))
        registry.register(MetricsFilterFactory(metrics: telemetry.metrics))
        registry.register(TapFilterFactory(hub: telemetry.tap))
        return registry
    }
}
