import WeftFilter

extension FilterRegistry {
    /// A registry holding Weft's built-in filters (`route`).
    public static func builtin() -> FilterRegistry {
        var registry = FilterRegistry()
        registry.register(RouteFilterFactory())
        return registry
    }
}
