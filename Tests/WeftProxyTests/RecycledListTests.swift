import Testing
@testable import WeftProxy

@Suite struct RecycledListTests {
    private final class Tracked {
        let value: Int
        init(_ value: Int) { self.value = value }
    }

    private func storage(of array: [Tracked]) -> UnsafeRawPointer? {
        array.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
    }

    @Test func takeHandsOutWhatWasAppendedInOrderAndLeavesTheListEmpty() {
        var list = RecycledList<Int>()
        #expect(list.isEmpty)
        for value in [3, 1, 2] { list.append(value) }
        #expect(!list.isEmpty)
        var taken = list.take()
        #expect(taken == [3, 1, 2])
        #expect(list.isEmpty)
        #expect(list.take().isEmpty)
        list.recycle(&taken)
        #expect(taken.isEmpty)
    }

    @Test func aWalkedListsStorageIsReusedInsteadOfAllocatedAgain() {
        // Two buffers alternate: a walk's storage, handed back, is the one the fill after next
        // writes into. Filling within its capacity must not move it.
        var list = RecycledList<Tracked>()
        var storages: [UnsafeRawPointer?] = []
        for cycle in 0..<6 {
            for value in 0..<100 { list.append(Tracked(cycle * 100 + value)) }
            var taken = list.take()
            #expect(taken.map(\.value) == Array(cycle * 100..<cycle * 100 + 100))
            storages.append(storage(of: taken))
            list.recycle(&taken)
        }
        #expect(storages[2] == storages[0])
        #expect(storages[4] == storages[0])
        #expect(storages[3] == storages[1])
        #expect(storages[5] == storages[1])
        #expect(storages[0] != storages[1])
    }

    @Test func recyclingReleasesTheElementsAtOnce() {
        var list = RecycledList<Tracked>()
        weak var released: Tracked?
        do {
            let element = Tracked(1)
            released = element
            list.append(element)
        }
        var taken = list.take()
        #expect(released != nil)
        list.recycle(&taken)
        #expect(released == nil)
    }

    @Test func whatIsAppendedDuringAWalkWaitsForTheNextTake() {
        var list = RecycledList<Int>()
        list.append(1)
        var taken = list.take()
        for value in taken { list.append(value + 10) }
        list.recycle(&taken)
        #expect(list.take() == [11])
    }
}
