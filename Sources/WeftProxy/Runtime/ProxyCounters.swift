import Synchronization

/// Connection-level counters the data plane keeps (opaque TCP, detection), for the metrics filter to come.
final class ProxyCounters: Sendable {
    let detectionTimeouts = Atomic<Int>(0)
    let tcpOpened = Atomic<Int>(0)
    let tcpClosed = Atomic<Int>(0)
    let tcpReadBytes = Atomic<Int>(0)
    let tcpWriteBytes = Atomic<Int>(0)
}
