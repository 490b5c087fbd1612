import WeftFilter

extension FilterRegistry {
    /// A registry holding Weft's built-in filters (`protocol-detect`, `route`).
    public static func builtin() -> FilterRegistry {
        var registry = FilterRegistry()
        registry.register(connection: ProtocolDetectFactory())
        registry.register(RouteFilterFactory())
        return registry
    }
}
