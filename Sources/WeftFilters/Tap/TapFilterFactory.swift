import HTTPTypes
import WeftFilter
import WeftTelemetry

/// Builds the `tap` filter over the proxy's ``TapHub`` (the taps opened through its tap listener).
public struct TapFilterFactory: FilterFactory {
    public let name = "tap"
    public let hub: TapHub

    public init(hub: TapHub) {
        self.hub = hub
    }

    public func makeFilter(config: TapFilterConfig, context: FilterBuildContext) throws(FilterConfigError) -> any HTTPFilter {
        var redacted: Set<String> = []
        for (index, name) in config.redactHeaders.enumerated() {
            guard HTTPField.Name(name) != nil else {
                throw FilterConfigError(field: "redactHeaders[\(index)]", message: "'\(name)' is not a valid header name")
            }
            redacted.insert(name.lowercased())
        }
        return TapFilter(hub: hub, redactedHeaders: redacted)
    }
}
