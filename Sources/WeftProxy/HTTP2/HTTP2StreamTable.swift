import NIOHTTP2

/// A stream of one of the proxy's HTTP/2 connections, as its connection's table keeps it.
protocol HTTP2TableStream: AnyObject {
    /// The stream received frames in the read in progress (kept by the table).
    var isReading: Bool { get set }
}

/// The open streams of one HTTP/2 connection, by ID, and the bookkeeping both of the proxy's sides
/// do for them: which streams the read in progress reached, and NIO's window and close events
/// resolved to their stream. Nothing here calls a stream: callers act on what the table returns,
/// once it is done changing (a stream's callback may come back to the table).
struct HTTP2StreamTable<Stream: HTTP2TableStream> {
    private(set) var byID = HTTP2StreamIDMap<Stream>()
    private var readers = RecycledList<Stream>()

    subscript(id: HTTP2StreamID) -> Stream? {
        get { byID[id] }
        set { byID[id] = newValue }
    }

    var isEmpty: Bool { byID.isEmpty }

    /// Empties the table (the connection is gone), returning the streams that were open.
    mutating func removeAll() -> [Stream] {
        byID.removeAll()
    }

    /// Notes that `stream` received a frame in the read in progress.
    mutating func noteRead(_ stream: Stream) {
        guard !stream.isReading else { return }
        stream.isReading = true
        readers.append(stream)
    }

    /// The streams the completed read reached, to tell; hand the array back with `recycle(_:)`.
    mutating func takeReaders() -> [Stream] {
        let taken = readers.take()
        for stream in taken { stream.isReading = false }
        return taken
    }

    /// Takes back what `takeReaders()` returned, once its streams are told, for the next read.
    mutating func recycle(_ told: inout [Stream]) {
        readers.recycle(&told)
    }

    /// What one of NIO's inbound events means for the streams. A closed stream leaves the table.
    ///
    /// The event's type is compared before it is cast: a cast that fails (most events are neither
    /// kind) walks the runtime's generic casting machinery, ~1% of a proxy's HTTP/2 CPU.
    mutating func resolve(_ event: Any) -> HTTP2StreamEvent<Stream> {
        let eventType = type(of: event)
        if eventType == NIOHTTP2WindowUpdatedEvent.self, let updated = event as? NIOHTTP2WindowUpdatedEvent,
           let size = updated.inboundWindowSize {
            if updated.streamID == .rootStream {
                // DATA on every stream, including ones reset and dropped, draws on it: return it all.
                return ReceiveWindow.increment(for: size).map { .connectionWindowDue($0) } ?? .none
            }
            return byID[updated.streamID].map { .receiveWindow($0, size) } ?? .none
        }
        if eventType == StreamClosedEvent.self, let closed = event as? StreamClosedEvent,
           let stream = byID.removeValue(forKey: closed.streamID) {
            return .closed(stream, reset: closed.reason)
        }
        return .none
    }
}

/// One of NIO's inbound events, resolved by an ``HTTP2StreamTable``.
enum HTTP2StreamEvent<Stream> {
    /// The connection's receive window is due this WINDOW_UPDATE increment.
    case connectionWindowDue(Int)
    /// NIO reports the stream's receive window.
    case receiveWindow(Stream, Int)
    /// NIO closed the stream; `reset` is a reset's code, by either side.
    case closed(Stream, reset: NIOHTTP2.HTTP2ErrorCode?)
    case none
}

/// A receive window kept near its target, topped up once it has fallen to half (NIO's own rule
/// for its stream channels): few WINDOW_UPDATE frames, and the sender never waits on a window
/// that is more than half open. A stream keeps one; the connection's is returned whole (see
/// ``HTTP2StreamTable/resolve(_:)``).
struct ReceiveWindow {
    /// The window advertised in SETTINGS (HTTP/2's default; Weft does not change it).
    static let target = 65_535

    /// The increment to announce when the window is `size`, if it is time to.
    static func increment(for size: Int) -> Int? {
        size <= target / 2 ? target - size : nil
    }

    /// The window as NIO last reported it, plus what this side has returned since.
    private(set) var size = ReceiveWindow.target

    mutating func reported(_ size: Int) {
        self.size = size
    }

    /// The WINDOW_UPDATE increment due now, if any; counted as returned.
    mutating func takeIncrement() -> Int? {
        guard let increment = Self.increment(for: size) else { return nil }
        size += increment
        return increment
    }
}
