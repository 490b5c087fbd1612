import NIOHTTP2
import Testing
@testable import WeftProxy

@Suite struct HTTP2StreamIDMapTests {
    @Test func aConnectionsStreamsOpeningAndClosingInAnyOrderAreFoundUntilTheyClose() {
        // Streams open in ID order and close in any order, as on a real connection, with the
        // window of open ones (up to 40) wider than the first table (16 slots: 8 streams, so it
        // grows) and IDs that share a home slot (so probe runs form and deletions must shift them).
        var generator = SplitMix64(seed: 42)
        var map = HTTP2StreamIDMap<Int>()
        var model: [Int32: Int] = [:]
        var nextID: Int32 = 1
        for step in 0..<20_000 {
            let open = model.count < 40 && (model.isEmpty || generator.next() % 3 != 0)
            if open {
                // Mostly the next ID; sometimes one far ahead that lands on an occupied home slot.
                let id = generator.next() % 10 == 0 ? nextID + 2 * 64 * Int32(1 + generator.next() % 4) : nextID
                nextID += 2
                if model[id] == nil {
                    map[HTTP2StreamID(id)] = step
                    model[id] = step
                }
            } else {
                let victim = Array(model.keys)[Int(generator.next() % UInt64(model.count))]
                #expect(map.removeValue(forKey: HTTP2StreamID(victim)) == model.removeValue(forKey: victim))
            }
            #expect(map.count == model.count)
            if step % 97 == 0 {
                for (id, value) in model { #expect(map[HTTP2StreamID(id)] == value) }
                // IDs not open (never opened, or closed) are not found.
                for id in stride(from: max(1, nextID - 200), through: nextID + 400, by: 2) where model[id] == nil {
                    #expect(map[HTTP2StreamID(id)] == nil)
                }
            }
        }
        #expect(Set(map.entries.map { Int32($0.id) }) == Set(model.keys))
        #expect(map.values.sorted() == model.values.sorted())
    }

    @Test func removingAnEntryInTheMiddleOfAProbeRunKeepsTheEntriesAfterItReachable() {
        // In the first table (16 slots), 1, 33 and 65 share home slot 0 and fill slots 0-2; 3, at
        // home in slot 1, is pushed to slot 3 by them.
        var map = HTTP2StreamIDMap<String>()
        for id: Int32 in [1, 33, 65, 3] { map[HTTP2StreamID(id)] = "s\(id)" }
        map[HTTP2StreamID(33)] = nil
        #expect(map[HTTP2StreamID(1)] == "s1")
        #expect(map[HTTP2StreamID(65)] == "s65")
        #expect(map[HTTP2StreamID(3)] == "s3")
        #expect(map[HTTP2StreamID(33)] == nil)
        #expect(map.removeValue(forKey: HTTP2StreamID(1)) == "s1")
        #expect(map[HTTP2StreamID(65)] == "s65")
        #expect(map[HTTP2StreamID(3)] == "s3")
        #expect(map.count == 2)
    }

    @Test func replacingAStreamsValueKeepsOneEntry() {
        var map = HTTP2StreamIDMap<Int>()
        map[HTTP2StreamID(5)] = 1
        map[HTTP2StreamID(5)] = 2
        #expect(map.count == 1)
        #expect(map[HTTP2StreamID(5)] == 2)
    }

    @Test func aMapWithNoStreamsYetFindsNothingAndTakesItsFirst() {
        var map = HTTP2StreamIDMap<Int>()
        #expect(map[HTTP2StreamID(1)] == nil)
        #expect(map.removeValue(forKey: HTTP2StreamID(1)) == nil)
        #expect(map.removeAll().isEmpty)
        map[HTTP2StreamID(1)] = 1
        #expect(map[HTTP2StreamID(1)] == 1)
        #expect(map.count == 1)
    }

    @Test func removeAllReturnsEveryValueAndEmptiesTheMap() {
        var map = HTTP2StreamIDMap<Int32>()
        for id in stride(from: Int32(1), through: 99, by: 2) { map[HTTP2StreamID(id)] = id }
        #expect(map.removeAll().sorted() == Array(stride(from: Int32(1), through: 99, by: 2)))
        #expect(map.isEmpty)
        #expect(map[HTTP2StreamID(1)] == nil)
        map[HTTP2StreamID(101)] = 101
        #expect(map[HTTP2StreamID(101)] == 101)
    }
}

/// A small deterministic generator, so a failing sequence can be replayed.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
