/// Backpressure for one channel: withholds `read()` while the other side cannot take more, and
/// says when to issue the withheld read. It never calls `read()` itself: a read can re-enter the
/// handler synchronously (NIO's HTTP/2 stream channels do, for one), so the caller reads after the
/// gate's update.
struct ReadGate {
    private var withheld = false

    /// Whether to pass a read on now; if `holding`, the read is remembered instead.
    mutating func admits(holding: Bool) -> Bool {
        if holding { withheld = true }
        return !holding
    }

    /// Whether a read was withheld (and is now due).
    mutating func releases() -> Bool {
        defer { withheld = false }
        return withheld
    }
}
