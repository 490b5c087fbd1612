// Byte-level text helpers for header names and values, which HTTP keeps to ASCII where it matters.

extension StringProtocol {
    /// ASCII case-insensitive equality, without allocating.
    ///
    /// Over the bytes in place when both are contiguous (native strings are): walking two UTF-8
    /// views through their iterators cost ~750 instructions for `keep-alive`.
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let inPlace = utf8.withContiguousStorageIfAvailable { mine in
            other.utf8.withContiguousStorageIfAvailable { theirs in
                mine.count == theirs.count && !zip(mine, theirs).contains { !Self.sameLetterIgnoringCase($0, $1) }
            }
        }
        if let inPlace = inPlace ?? nil { return inPlace }
        var mine = utf8.makeIterator()
        var theirs = other.utf8.makeIterator()
        while true {
            switch (mine.next(), theirs.next()) {
            case (nil, nil):
                return true
            case (let a?, let b?):
                guard Self.sameLetterIgnoringCase(a, b) else { return false }
            default:
                return false
            }
        }
    }

    private static func sameLetterIgnoringCase(_ a: UInt8, _ b: UInt8) -> Bool {
        a == b || (a | 0x20 == b | 0x20 && (a | 0x20) >= UInt8(ascii: "a") && (a | 0x20) <= UInt8(ascii: "z"))
    }
}

extension StringProtocol where UTF8View: BidirectionalCollection {
    /// The text without leading and trailing spaces and tabs. Walks UTF-8 bytes: the blanks are
    /// ASCII, so the indices found are character boundaries, and no grapheme breaking is needed
    /// (`first`/`removeFirst` on the characters cost ~1 000 instructions for `keep-alive`).
    func trimmingBlanks() -> Substring {
        let bytes = utf8
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") {
            start = bytes.index(after: start)
        }
        while start < end {
            let last = bytes.index(before: end)
            guard bytes[last] == UInt8(ascii: " ") || bytes[last] == UInt8(ascii: "\t") else { break }
            end = last
        }
        return Substring(self[start..<end])
    }
}
