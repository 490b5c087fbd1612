import WeftFilter

/// Registers as `protocol-detect`.
public struct ProtocolDetectFactory: ConnectionFilterFactory {
    public let name = "protocol-detect"

    public init() {}

    public func makeConnectionFilter(config: ProtocolDetectConfig, context: FilterBuildContext) throws(FilterConfigError) -> any ConnectionFilter {
        guard config.timeout.nanoseconds > 0 else {
            throw FilterConfigError(field: "timeout", message: "must be greater than zero")
        }
        for (index, port) in config.opaquePorts.enumerated() where !(1...65535).contains(port) {
            throw FilterConfigError(field: "opaquePorts[\(index)]", message: "\(port) is not a TCP port")
        }
        return ProtocolDetectFilter(timeout: config.timeout, opaquePorts: Set(config.opaquePorts))
    }
}
