/// A list filled during one event and walked whole after it (the streams a read reached, the
/// heads waiting for a flush), whose storage is reused from one event to the next.
///
/// The walk cannot run over the list in place: what it calls may append to the list again. Taking
/// a copy and then `removeAll(keepingCapacity: true)` allocates a new buffer of the full capacity
/// on every event, as the copy still holds the old one (1.2 KB per read on an upstream HTTP/2
/// connection carrying 100 streams, large enough that each made malloc consolidate its free lists).
/// Here `take()` hands the filled storage out and puts the storage of the previous walk, handed
/// back with `recycle(_:)`, in its place.
struct RecycledList<Element> {
    private var items: [Element] = []
    private var spare: [Element] = []

    var isEmpty: Bool { items.isEmpty }

    mutating func append(_ element: Element) {
        items.append(element)
    }

    /// The elements appended since the last take; the list is left empty.
    mutating func take() -> [Element] {
        var taken = spare
        spare = []
        swap(&taken, &items)
        return taken
    }

    /// Gives back an array `take()` returned, once walked: its elements are released now, and
    /// its storage is kept for the next take.
    mutating func recycle(_ taken: inout [Element]) {
        taken.removeAll(keepingCapacity: true)
        if taken.capacity > spare.capacity { swap(&taken, &spare) }
    }
}
