/// Values made once per key and found again, the one used last checked first. A metrics series or
/// response counter is looked up for every request, consecutive requests mostly want the same one,
/// and comparing two keys (strings from the same config share their storage; small integers) is
/// cheaper than hashing one. Inlinable, so the lookup is specialized where it is used.
public struct LastUsedCache<Key: Hashable, Value> {
    @usableFromInline var byKey: [Key: Value] = [:]
    @usableFromInline var last: (key: Key, value: Value)?

    public init() {}

    /// The value for `key`; `make` makes it the first time the key is asked for.
    @inlinable
    public mutating func value(for key: Key, orMake make: () -> Value) -> Value {
        if let last, last.key == key { return last.value }
        let value: Value
        if let known = byKey[key] {
            value = known
        } else {
            value = make()
            byKey[key] = value
        }
        last = (key, value)
        return value
    }
}
