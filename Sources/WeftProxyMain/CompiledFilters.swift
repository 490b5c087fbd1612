import WeftFilter
import WeftFilters
import WeftHeaderRewrite
import WeftTelemetry

/// Every filter compiled into this proxy, by name. Swift has no static constructors, so a new
/// filter (built-in or from `Plugins/`) is added here, once, and is then enabled purely by config.
public enum CompiledFilters {
    /// The registry; the `metrics` and `tap` filters report into `telemetry`.
    public static func registry(telemetry: Telemetry = Telemetry()) -> FilterRegistry {
        var registry = FilterRegistry.builtin(telemetry: telemetry)
        registry.register(HeaderRewriteFactory())
        return registry
    }
}
