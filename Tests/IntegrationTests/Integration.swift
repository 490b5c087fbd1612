import Testing

/// Every integration suite runs under this one, one test at a time: each starts real processes
/// (weft-proxy, Python upstreams, curl) and the machine has two cores.
@Suite(.serialized) struct Integration {}
