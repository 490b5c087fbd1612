import WeftFilter
import WeftFilters
import WeftHeaderRewrite

/// Every filter compiled into this proxy, by name. Swift has no static constructors, so a new
/// filter (built-in or from `Plugins/`) is added here, once, and is then enabled purely by config.
public enum CompiledFilters {
    public static func registry() -> FilterRegistry {
        var registry = FilterRegistry.builtin()
        registry.register(HeaderRewriteFactory())
        return registry
    }
}
