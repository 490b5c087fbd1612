import NIOHTTP2

/// Values by HTTP/2 stream ID, for the streams open on one connection: an open-addressing table
/// indexed by the ID's own bits, probed linearly.
///
/// A connection's stream IDs grow by two from one stream to the next (odd from clients, even from
/// servers), and the streams open at once are a window of them: dropping the low bit and masking
/// puts consecutive streams in consecutive slots, so a lookup is a shift, a mask and a compare.
/// A `Dictionary` hashes every ID with SipHash on every frame and event, ~1% of a proxy's
/// HTTP/2 CPU. The table is allocated with a connection's first stream (an idle connection holds
/// none), doubles when it is half full and never shrinks (a connection's concurrency stays where
/// it was).
struct HTTP2StreamIDMap<Value> {
    /// `0` marks an empty slot: stream 0 is the connection itself, never a key.
    private var keys: [Int32]
    private var slots: [Value?]
    private(set) var count = 0

    /// An empty map, holding no storage until its first stream.
    init() {
        self.init(slotCount: 0)
    }

    private init(slotCount: Int) {
        keys = Array(repeating: 0, count: slotCount)
        slots = Array(repeating: nil, count: slotCount)
    }

    var isEmpty: Bool { count == 0 }

    private var mask: Int { keys.count - 1 }

    private func home(_ key: Int32) -> Int { Int(key >> 1) & mask }

    /// The slot holding `key`, if any.
    private func find(_ key: Int32) -> Int? {
        guard !keys.isEmpty else { return nil }
        var index = home(key)
        while true {
            let found = keys[index]
            if found == key { return index }
            if found == 0 { return nil }
            index = (index + 1) & mask
        }
    }

    subscript(id: HTTP2StreamID) -> Value? {
        get {
            find(Int32(id)).flatMap { slots[$0] }
        }
        set {
            if let newValue { insert(Int32(id), newValue) } else { removeValue(forKey: id) }
        }
    }

    private mutating func insert(_ key: Int32, _ value: Value) {
        precondition(key != 0, "stream 0 is the connection, not a stream")
        if let index = find(key) {
            slots[index] = value
            return
        }
        if (count + 1) * 2 > keys.count { grow() }
        var index = home(key)
        while keys[index] != 0 { index = (index + 1) & mask }
        keys[index] = key
        slots[index] = value
        count += 1
    }

    /// Removes and returns the value of `id`, if it has one.
    @discardableResult
    mutating func removeValue(forKey id: HTTP2StreamID) -> Value? {
        guard var hole = find(Int32(id)) else { return nil }
        let removed = slots[hole]
        keys[hole] = 0
        slots[hole] = nil
        count -= 1
        // Backward-shift deletion: move later entries of the run into the hole when the hole lies
        // between their home slot and where they sit, so every lookup still finds them.
        var index = (hole + 1) & mask
        while keys[index] != 0 {
            let home = home(keys[index])
            let distanceFromHome = (index - home) & mask
            let distanceToHole = (index - hole) & mask
            if distanceFromHome >= distanceToHole {
                keys[hole] = keys[index]
                slots[hole] = slots[index]
                keys[index] = 0
                slots[index] = nil
                hole = index
            }
            index = (index + 1) & mask
        }
        return removed
    }

    private mutating func grow() {
        var bigger = HTTP2StreamIDMap(slotCount: max(16, keys.count * 2))
        for (key, value) in zip(keys, slots) where key != 0 {
            bigger.insert(key, value!)
        }
        self = bigger
    }

    /// Empties the map, returning the values it held.
    mutating func removeAll() -> [Value] {
        let all = values
        keys = Array(repeating: 0, count: keys.count)
        slots = Array(repeating: nil, count: slots.count)
        count = 0
        return all
    }

    /// Every value, in no particular order.
    var values: [Value] { slots.compactMap { $0 } }

    /// Every stream ID with its value, in no particular order.
    var entries: [(id: HTTP2StreamID, value: Value)] {
        zip(keys, slots).compactMap { key, value in
            key == 0 ? nil : (HTTP2StreamID(key), value!)
        }
    }
}
