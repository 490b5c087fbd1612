import Testing
import WeftTelemetry

@Suite struct LastUsedCacheTests {
    @Test func eachKeyGetsTheValueMadeForItOnceWhicheverWasUsedLast() {
        var cache = LastUsedCache<String, Int>()
        var made = 0
        func value(_ key: String) -> Int {
            cache.value(for: key) { made += 1; return key.count * 10 + made }
        }
        let a = value("a"), bb = value("bb")
        #expect((a, bb) == (11, 22))
        #expect([value("bb"), value("a"), value("a"), value("bb")] == [22, 11, 11, 22])
        #expect(made == 2, "each value is made once")
    }
}
